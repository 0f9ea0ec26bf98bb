"""Tests for the Confluence storage format to plain text conversion."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coco_operator.confluence.storage_text import DROPPED_MACROS, storage_to_text

GOLDEN_DIR = Path(__file__).parent / "golden" / "storage"
GOLDEN_CASES = sorted(GOLDEN_DIR.glob("*.xhtml"))
GOLDEN_USERS = {
    "557058:6c3f1d2e-aaaa-bbbb-cccc-1234567890ab": "Alice Martin",
    "8a7f808a5f2b3c4d015f2b3c5e6f0001": "Bob Chen",
    "jdoe": "Jane Doe",
}


def macro(
    name: str,
    *,
    params: dict[str, str] | None = None,
    rich: str = "",
    plain: str | None = None,
) -> str:
    """A structured macro as Confluence stores it."""
    parts = [f'<ac:parameter ac:name="{key}">{value}</ac:parameter>' for key, value in (params or {}).items()]
    if rich:
        parts.append(f"<ac:rich-text-body>{rich}</ac:rich-text-body>")
    if plain is not None:
        parts.append(f"<ac:plain-text-body><![CDATA[{plain}]]></ac:plain-text-body>")
    body = "".join(parts)
    return f'<ac:structured-macro ac:name="{name}" ac:schema-version="1">{body}</ac:structured-macro>'


# --- golden files ---------------------------------------------------------------------------


def test_golden_cases_exist() -> None:
    assert len(GOLDEN_CASES) >= 8
    for source in GOLDEN_CASES:
        assert source.with_suffix(".txt").is_file(), f"{source.name} has no .txt counterpart"


@pytest.mark.parametrize("source", GOLDEN_CASES, ids=lambda path: path.stem)
def test_golden(source: Path) -> None:
    expected_file = source.with_suffix(".txt")
    actual = storage_to_text(source.read_text(encoding="utf-8"), users=GOLDEN_USERS)
    # UPDATE_GOLDEN=1 rewrites the expectations; review the diff before keeping it.
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_file.write_text(actual + "\n", encoding="utf-8")
    assert actual == expected_file.read_text(encoding="utf-8").removesuffix("\n")


# --- paragraphs and whitespace --------------------------------------------------------------


@pytest.mark.parametrize("storage", ["", "   \n\t ", "<p></p>", "<p>&nbsp;</p><p><br/></p>", "<p/>"])
def test_empty_input_gives_empty_string(storage: str) -> None:
    assert storage_to_text(storage) == ""


def test_paragraphs_are_separated_by_one_blank_line() -> None:
    assert storage_to_text("<p>First.</p><p>Second.</p>\n\n<p>Third.</p>") == "First.\n\nSecond.\n\nThird."


def test_whitespace_inside_text_is_collapsed_and_result_stripped() -> None:
    storage = "<p>  Lots \n of\t\twhitespace&nbsp;&nbsp;here  </p>"
    assert storage_to_text(storage) == "Lots of whitespace here"


def test_inline_elements_do_not_add_spaces() -> None:
    storage = "<p>un<strong>believ</strong><em>able</em> <span>news</span></p>"
    assert storage_to_text(storage) == "unbelievable news"


def test_line_breaks_are_kept() -> None:
    assert storage_to_text("<p>one<br/>two <br />  three</p>") == "one\ntwo\nthree"


def test_never_more_than_one_blank_line() -> None:
    result = storage_to_text("<p>a<br/><br/><br/><br/>b</p><p></p><div><p> </p></div><p>c</p>")
    assert result == "a\n\nb\n\nc"


def test_text_outside_paragraphs_is_kept() -> None:
    assert storage_to_text("loose text<p>para</p>tail") == "loose text\n\npara\n\ntail"


# --- headings -------------------------------------------------------------------------------


@pytest.mark.parametrize("level", range(1, 7))
def test_headings_get_hash_prefix(level: int) -> None:
    storage = f"<p>before</p><h{level}>Install <em>it</em></h{level}><p>after</p>"
    assert storage_to_text(storage) == f"before\n\n{'#' * level} Install it\n\nafter"


def test_heading_is_on_one_line_and_empty_heading_vanishes() -> None:
    assert storage_to_text("<h2>Two<br/>lines</h2><h3> </h3>") == "## Two lines"


# --- lists ----------------------------------------------------------------------------------


def test_unordered_list() -> None:
    assert storage_to_text("<ul><li>one</li><li><p>two</p></li></ul>") == "- one\n- two"


def test_ordered_list_is_numbered() -> None:
    assert storage_to_text("<ol><li>a</li><li>b</li><li>c</li></ol>") == "1. a\n2. b\n3. c"


def test_ordered_list_honours_start_and_skips_empty_items() -> None:
    assert storage_to_text('<ol start="4"><li>d</li><li> </li><li>e</li></ol>') == "4. d\n5. e"


def test_nested_lists_are_indented_two_spaces_per_level() -> None:
    storage = "<ul><li>a<ol><li>b<ul><li>c</li></ul></li></ol></li><li>d</li></ul>"
    assert storage_to_text(storage) == "- a\n  1. b\n    - c\n- d"


def test_sub_list_without_li_is_indented_under_the_previous_item() -> None:
    assert storage_to_text("<ul><li>a</li><ul><li>b</li></ul><li>c</li></ul>") == "- a\n  - b\n- c"


def test_list_item_with_several_paragraphs_has_no_blank_lines() -> None:
    storage = "<ul><li><p>first</p><p>more</p></li><li>x<br/>y</li></ul>"
    assert storage_to_text(storage) == "- first\n  more\n- x\n  y"


def test_list_is_separated_from_surrounding_text() -> None:
    assert storage_to_text("<p>Steps:</p><ul><li>go</li></ul><p>Done.</p>") == "Steps:\n\n- go\n\nDone."


# --- tables ---------------------------------------------------------------------------------


def test_table_rows_are_lines_with_pipe_separated_cells() -> None:
    storage = (
        "<p>Before</p><table><thead><tr><th>Name</th><th>Role</th></tr></thead>"
        "<tbody><tr><td><p>Ann</p></td><td>Lead<br/>and owner</td></tr></tbody></table><p>After</p>"
    )
    assert storage_to_text(storage) == "Before\n\nName | Role\nAnn | Lead and owner\n\nAfter"


def test_table_without_tbody_and_empty_rows() -> None:
    rows = "<tr><td>a</td><td>b</td></tr><tr><td></td><td> </td></tr><tr><td>c</td><td></td></tr>"
    storage = f"<table>{rows}</table>"
    assert storage_to_text(storage) == "a | b\nc |"


# --- code -----------------------------------------------------------------------------------


def test_code_macro_is_fenced_with_language_and_kept_verbatim() -> None:
    code = 'def f(x):\n    if x < 1 and x > -1:\n        return "a  &amp;  b"'
    storage = macro("code", params={"language": "python", "title": "Example"}, plain=code)
    assert storage_to_text(f"<p>See:</p>{storage}") == f"See:\n\n```python\n{code}\n```"


def test_code_macro_without_language() -> None:
    assert storage_to_text(macro("code", plain="\nmake all\n\n")) == "```\nmake all\n```"


def test_empty_code_macro_vanishes() -> None:
    assert storage_to_text("<p>x</p>" + macro("code", params={"language": "bash"}, plain="  \n")) == "x"


def test_cdata_with_markup_is_text() -> None:
    code = "<ac:link><ri:page ri:content-title='x'/></ac:link> ]] > done &amp;"
    assert storage_to_text(macro("code", plain=code)) == f"```\n{code}\n```"


def test_pre_is_verbatim_and_inline_code_keeps_spacing() -> None:
    storage = "<p>Run <code>make  all</code> now.</p><pre>  indented\n    more</pre>"
    assert storage_to_text(storage) == "Run make  all now.\n\n  indented\n    more"


# --- callout and other macros ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "label"), [("info", "Info:"), ("note", "Note:"), ("warning", "Warning:"), ("tip", "Tip:")]
)
def test_admonition_macros_get_a_label_line(name: str, label: str) -> None:
    storage = macro(name, params={"icon": "true"}, rich="<p>Body <strong>text</strong>.</p><p>More.</p>")
    assert storage_to_text(storage) == f"{label}\nBody text.\n\nMore."


def test_admonition_title_follows_the_label() -> None:
    assert storage_to_text(macro("note", params={"title": "Careful"}, rich="<p>x</p>")) == "Note: Careful\nx"


def test_empty_admonition_vanishes() -> None:
    assert storage_to_text(macro("warning", rich="<p> </p>")) == ""


def test_panel_uses_its_title_or_nothing() -> None:
    titled = macro("panel", params={"title": "Rollback", "bgColor": "#fff"}, rich="<p>Redeploy.</p>")
    untitled = macro("panel", params={"bgColor": "#fff"}, rich="<p>Plain.</p>")
    assert storage_to_text(titled + untitled) == "Rollback\nRedeploy.\n\nPlain."


def test_expand_keeps_title_then_body() -> None:
    storage = macro("expand", params={"title": "Details"}, rich="<ul><li>one</li></ul>")
    assert storage_to_text(storage) == "Details\n- one"


def test_status_and_jira_macros_are_inline() -> None:
    status = macro("status", params={"colour": "Green", "title": "DONE"})
    jira = macro("jira", params={"server": "System JIRA", "serverId": "abc-123", "key": "OPS-7"})
    assert storage_to_text(f"<p>State {status} for {jira}.</p>") == "State DONE for OPS-7."


@pytest.mark.parametrize("name", sorted(DROPPED_MACROS))
def test_noise_macros_vanish(name: str) -> None:
    params = {"diagramName": "secret-param"}
    noisy = macro(name, params=params, rich="<p>secret-body</p>", plain="secret-plain")
    assert storage_to_text(f"<p>before</p>{noisy}<p>after</p>") == "before\n\nafter"


def test_dropped_macros_is_an_extensible_frozenset() -> None:
    assert isinstance(DROPPED_MACROS, frozenset)
    assert {"drawio", "gliffy", "toc", "excerpt-include"} <= DROPPED_MACROS


def test_macro_names_are_matched_case_insensitively() -> None:
    assert storage_to_text(macro("DrawIO", params={"name": "x"}) + "<p>ok</p>") == "ok"


def test_unknown_macro_keeps_its_body_but_not_its_parameters() -> None:
    params = {"hidden": "false", "atlassian-macro-output-type": "BLOCK"}
    rich = macro("excerpt", params=params, rich="<p>Summary</p>")
    plain = macro("noformat", params={"nopanel": "true"}, plain="  raw  text")
    bodiless = macro("include", params={"page": "Other page"})
    assert storage_to_text(rich + plain + bodiless) == "Summary\n\n  raw  text"


def test_inline_unknown_macro_does_not_split_its_paragraph() -> None:
    storage = f"<p>a {macro('highlight', params={'colour': 'red'}, rich='marked')} b</p>"
    assert storage_to_text(storage) == "a marked b"


def test_block_macro_inside_a_paragraph_keeps_its_body() -> None:
    storage = f"<p>before {macro('info', rich='<p>inside</p>')} after</p>"
    assert storage_to_text(storage) == "before\n\nInfo:\ninside\n\nafter"


def test_nested_macros() -> None:
    inner = macro("column", params={"width": "50%"}, rich=macro("tip", rich="<p>deep tip</p>"))
    assert storage_to_text(macro("section", rich=inner)) == "Tip:\ndeep tip"


# --- links, mentions, images ----------------------------------------------------------------


@pytest.mark.parametrize("attr", ["ri:account-id", "ri:userkey", "ri:username"])
def test_user_mention_uses_display_name(attr: str) -> None:
    storage = f'<p>Ask <ac:link><ri:user {attr}="u-1" /></ac:link> today.</p>'
    assert storage_to_text(storage, users={"u-1": "Jane Doe"}) == "Ask @Jane Doe today."


def test_unknown_user_falls_back_to_the_id() -> None:
    storage = '<p><ac:link><ri:user ri:account-id="557058:abc" /></ac:link></p>'
    assert storage_to_text(storage) == "@557058:abc"
    assert storage_to_text(storage, users={"other": "X"}) == "@557058:abc"


def test_user_link_without_id_vanishes() -> None:
    assert storage_to_text("<p>a <ac:link><ri:user /></ac:link> b</p>") == "a b"


def test_page_link_uses_body_or_title() -> None:
    bare = '<ac:link><ri:page ri:content-title="Release &amp; Deploy" ri:space-key="ENG"/></ac:link>'
    plain = (
        '<ac:link><ri:page ri:content-title="Glossary"/>'
        "<ac:plain-text-link-body><![CDATA[the glossary]]></ac:plain-text-link-body></ac:link>"
    )
    rich_body = "<ac:link-body><em>common</em> questions</ac:link-body>"
    rich = f'<ac:link><ri:page ri:content-title="FAQ"/>{rich_body}</ac:link>'
    expected = "Release & Deploy, the glossary, common questions."
    assert storage_to_text(f"<p>{bare}, {plain}, {rich}.</p>") == expected


def test_html_anchor_keeps_its_text() -> None:
    assert storage_to_text('<p>Go to <a href="https://example.com/x?a=1&amp;b=2">the site</a>.</p>') == (
        "Go to the site."
    )


def test_images_and_emoticons_are_dropped() -> None:
    storage = (
        '<p>Look<ac:image ac:alt="alt text" ac:title="img title">'
        '<ri:attachment ri:filename="a.png"/></ac:image>'
        ' here <ac:emoticon ac:name="smile" ac:emoji-fallback="x"/>now<img src="b.png" alt="alt2"/>.</p>'
    )
    assert storage_to_text(storage) == "Look here now."


def test_self_closing_elements_do_not_swallow_following_text() -> None:
    storage = '<p>a<ac:emoticon ac:name="tick"/> b</p><p>c<ri:page ri:content-title="x"/> d</p>'
    assert storage_to_text(storage) == "a b\n\nc d"


# --- tasks ----------------------------------------------------------------------------------


def test_task_list_checkboxes() -> None:
    storage = (
        "<ac:task-list>"
        "<ac:task><ac:task-id>1</ac:task-id><ac:task-status>complete</ac:task-status>"
        "<ac:task-body>Done thing</ac:task-body></ac:task>"
        "<ac:task><ac:task-id>2</ac:task-id><ac:task-status>incomplete</ac:task-status>"
        "<ac:task-body>Open thing for "
        '<ac:link><ri:user ri:account-id="u1"/></ac:link></ac:task-body></ac:task>'
        "</ac:task-list>"
    )
    assert storage_to_text(storage, users={"u1": "Bo"}) == "- [x] Done thing\n- [ ] Open thing for @Bo"


def test_task_dates_use_the_datetime_attribute() -> None:
    storage = (
        "<ac:task-list><ac:task><ac:task-status>incomplete</ac:task-status>"
        '<ac:task-body>Ship by <time datetime="2024-07-01" /> please</ac:task-body></ac:task></ac:task-list>'
    )
    assert storage_to_text(storage) == "- [ ] Ship by 2024-07-01 please"


# --- entities and unicode -------------------------------------------------------------------


def test_entities_are_decoded() -> None:
    storage = "<p>a&nbsp;b &amp; c &mdash; d &lt;tag&gt; &quot;q&quot; &#39;s&#39; &#x2192; &eacute;</p>"
    assert storage_to_text(storage) == "a b & c — d <tag> \"q\" 's' → é"


def test_unicode_is_kept() -> None:
    text = "日本語のテキスト 中文 한국어 — émoji 🚀👩‍💻 café"
    assert storage_to_text(f"<p>{text}</p>") == text


# --- robustness -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "storage",
    [
        "<p>unclosed <strong>bold",
        "</p></div></ac:structured-macro>",
        "<<<>>>&&&;;",
        "<ac:structured-macro ac:name='code'><ac:plain-text-body><![CDATA[no end",
        "<ac:structured-macro ac:name=",
        '<ac:link><ri:user ri:account-id="x"',
        "<table><td>cell without row<tr><li>item in a row</table>",
        "<ul><ol><li>a<li>b</ul></ol>",
        "<![CDATA[]]><!-- comment --><!DOCTYPE html><?xml version='1.0'?>",
        "<p>\x00nul\ufffd</p>",
        "<html><head><title>t</title></head><body><p>x</p></body></html>",
        "<ac:task-list><ac:task><ac:task-body></ac:task-list>",
        '<ol start="99999999999999999999999"><li>big</li></ol><ol start="-"><li>odd</li></ol>',
        "<script>alert(1)</script><style>p{}</style>",
    ],
)
def test_malformed_input_never_raises(storage: str) -> None:
    result = storage_to_text(storage)
    assert isinstance(result, str)
    assert result == result.strip()
    assert "\n\n\n" not in result


def test_script_style_and_head_content_is_not_text() -> None:
    assert storage_to_text("<script>alert(1)</script><style>p{}</style><title>t</title><p>x</p>") == "x"


def test_unterminated_cdata_runs_to_the_end() -> None:
    storage = "<ac:structured-macro ac:name='code'><ac:plain-text-body><![CDATA[a < b"
    assert storage_to_text(storage) == "```\na < b\n```"


def test_absurdly_deep_nesting_degrades_instead_of_raising() -> None:
    storage = "<div><span>" * 3000 + "deep text" + "</span></div>" * 3000
    assert storage_to_text(storage) == "deep text"


def test_large_page_is_converted_completely() -> None:
    # About 1 MB of storage format; the builder joins lists of parts and every regex scans
    # linearly, so this stays fast. Not timed: a quadratic implementation would hang here.
    section = (
        "<h2>Section {i}</h2><p>Paragraph {i} with <strong>bold</strong> &amp; text.</p>"
        "<ul><li>first {i}</li><li>second {i}</li></ul><table><tr><td>key</td><td>{i}</td></tr></table>"
        + macro("code", params={"language": "sh"}, plain="echo {i}")
    )
    count = 4000
    storage = "".join(section.format(i=i) for i in range(count))
    assert len(storage) > 1_000_000
    result = storage_to_text(storage)
    first = "## Section 0\n\nParagraph 0 with bold & text.\n\n- first 0\n- second 0\n\nkey | 0\n\n"
    assert result.startswith(first)
    assert result.endswith(f"key | {count - 1}\n\n```sh\necho {count - 1}\n```")
    assert result.count("## Section ") == count


def test_long_runs_that_could_trip_backtracking_regexes() -> None:
    spaces = " " * 300_000
    assert storage_to_text(macro("code", plain=f"x{spaces}\ny")) == "```\nx\ny\n```"
    assert storage_to_text("<ri:page" + "a" * 300_000) == ""
    assert storage_to_text(f"<p>a{spaces}b</p>") == "a b"
