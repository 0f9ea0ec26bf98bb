"""Confluence storage format (XHTML with ``ac:``/``ri:`` macros) to plain text for the search index.

The output is meant for people and for full-text search, not for round-tripping: structure is
kept only where it helps reading (headings, list markers, table rows, code fences, callout
labels) and everything that is not text (images, diagrams, navigation macros) is dropped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator, Mapping

from selectolax.lexbor import LexborHTMLParser, LexborNode

__all__ = ["DROPPED_MACROS", "storage_to_text"]

# Macros whose content is binary, generated or navigational: indexing them only adds noise.
DROPPED_MACROS: frozenset[str] = frozenset(
    {
        "anchor",
        "attachments",
        "children",
        "contentbylabel",
        "drawio",
        "excerpt-include",
        "gliffy",
        "inc-drawio",
        "livesearch",
        "multimedia",
        "recently-updated",
        "toc",
        "view-file",
        "viewfile",
        "widget",
    }
)

_ADMONITION_LABELS: dict[str, str] = {"info": "Info:", "note": "Note:", "warning": "Warning:", "tip": "Tip:"}
# Macros rendered as an optional title line followed by their body.
_TITLED_MACROS = frozenset({"panel", "expand"})
# Body-less macros whose only meaningful text is one parameter.
_INLINE_PARAM_MACROS: dict[str, str] = {"status": "title", "jira": "key"}

# Attribute naming a link target when the link has no body text of its own.
_LINK_TARGET_ATTRS: dict[str, str] = {
    "ri:page": "ri:content-title",
    "ri:blog-post": "ri:content-title",
    "ri:attachment": "ri:filename",
    "ri:url": "ri:value",
    "ri:space": "ri:space-key",
}
_USER_ID_ATTRS = ("ri:account-id", "ri:userkey", "ri:username")

# HTML's implicit <p> closing would tear a macro body out of its paragraph; storage format
# nests explicitly, so paragraphs are parsed under a name the HTML parser has no rules for.
_PARAGRAPH = "coco-p"
_P_OPEN, _P_CLOSE = f"<{_PARAGRAPH}", f"</{_PARAGRAPH}"
_BLOCK_TAGS = frozenset(
    {
        _PARAGRAPH,
        "address",
        "article",
        "aside",
        "blockquote",
        "caption",
        "center",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "section",
        "summary",
        "ac:adf-node",
        "ac:layout",
        "ac:layout-cell",
        "ac:layout-section",
        "ac:rich-text-body",
    }
)
_DROPPED_TAGS = frozenset(
    {
        "audio",
        "canvas",
        "embed",
        "head",
        "iframe",
        "img",
        "math",
        "object",
        "script",
        "style",
        "svg",
        "template",
        "title",
        "video",
        "ac:adf-attribute",
        "ac:adf-fallback",
        "ac:emoticon",
        "ac:image",
        "ac:parameter",
        "ac:placeholder",
    }
)
_HEADING_LEVELS: dict[str, int] = {f"h{level}": level for level in range(1, 7)}
_VOID_TAGS = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)

# Each pattern is linear: no nested quantifiers, and attribute scans stop at the next '<' or '>'.
_CDATA = re.compile(r"<!\[CDATA\[(.*?)(?:\]\]>|\Z)", re.DOTALL)
_SELF_CLOSING = re.compile(r"<([A-Za-z][\w:.-]*)(\s[^<>]*?)?/>")
_P_TAG = re.compile(r"<(/?)p(?=[\s/>])", re.IGNORECASE)
_BLANK_RUN = re.compile(r"\n{3,}")
_TRAILING_BLANK = re.compile(r"[^\S\n]\n")


def storage_to_text(storage: str, *, users: Mapping[str, str] | None = None) -> str:
    """Convert Confluence storage format to readable plain text.

    ``users`` maps a user key or accountId to a display name so mentions read "@Display Name".
    Malformed markup never raises; empty input gives "".
    """
    if not storage or storage.isspace():
        return ""
    parser = LexborHTMLParser(_prepare(storage))
    body = parser.body
    if body is None:
        return ""
    out = _Text()
    try:
        _Renderer(users or {}).children(body, out)
        text = "\n\n".join(out.blocks())
    except RecursionError:
        # Absurdly deep nesting: settle for the bare words rather than failing the page.
        text = " ".join(body.text(separator=" ").split())
    return _tidy(text)


def _prepare(storage: str) -> str:
    """Rewrite the XML-isms of storage format that an HTML parser would misread."""
    text = storage.replace("\x00", "").replace("\r\n", "\n")
    # HTML treats CDATA as a bogus comment ending at the first '>': turn it into escaped text.
    text = _CDATA.sub(lambda m: html.escape(m.group(1), quote=False), text)
    # HTML ignores '/>' on non-void elements, so <ri:page/> would swallow everything after it.
    text = _SELF_CLOSING.sub(_expand_self_closing, text)
    # Plain <p> and </p> are most tags of a page: str.replace is far cheaper than a callback per match; the
    # regex (a function, not a template: template expansion per match is slow) takes the rest (<p class=...>).
    text = text.replace("<p>", _P_OPEN + ">").replace("</p>", _P_CLOSE + ">")
    return _P_TAG.sub(_rename_paragraph, text)


def _rename_paragraph(match: re.Match[str]) -> str:
    return _P_CLOSE if match.group(1) else _P_OPEN


def _expand_self_closing(match: re.Match[str]) -> str:
    name = match.group(1)
    if name.lower() in _VOID_TAGS:
        return match.group(0)
    return f"<{name}{match.group(2) or ''}></{name}>"


def _tidy(text: str) -> str:
    # Line by line rather than a regex: '[ \t]+$' backtracks quadratically on long space runs. Most texts have
    # no trailing blanks at all, which one linear search tells far faster than splitting into lines.
    if _TRAILING_BLANK.search(text):
        text = "\n".join(line.rstrip() for line in text.split("\n"))
    if "\n\n\n" in text:
        text = _BLANK_RUN.sub("\n\n", text)
    return text.strip()


class _Text:
    """Collects inline text into paragraphs (blocks), collapsing whitespace as it goes."""

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._parts: list[str] = []
        self._space = False  # whitespace seen since the last word, emitted only before the next one

    def text(self, value: str) -> None:
        words = value.split()
        if not words:
            self._space = self._space or bool(value)
            return
        self._space = self._space or value[0].isspace()
        self._flush_space()
        self._parts.append(" ".join(words))
        self._space = value[-1].isspace()

    def verbatim(self, value: str) -> None:
        if value:
            self._flush_space()
            self._parts.append(value)

    def line_break(self) -> None:
        self._parts.append("\n")
        self._space = False

    def para_break(self) -> None:
        if self._parts:  # most breaks come between blocks, with nothing collected
            paragraph = "".join(self._parts).strip()
            if paragraph:
                self._blocks.append(paragraph)
            self._parts.clear()
        self._space = False

    def block(self, value: str) -> None:
        self.para_break()
        if value.strip():
            self._blocks.append(value)

    def blocks(self) -> list[str]:
        self.para_break()
        return self._blocks

    def _flush_space(self) -> None:
        if self._space and self._parts and not self._parts[-1].endswith("\n"):
            self._parts.append(" ")
        self._space = False


class _Renderer:
    """Walks the parsed tree; each handler writes one element (and its subtree) into a `_Text`."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = users
        self._handlers: dict[str, Callable[[LexborNode, _Text], None]] = {
            "br": lambda _node, out: out.line_break(),
            "ul": self._list,
            "ol": self._list,
            "table": self._table,
            "pre": self._pre,
            "code": self._code,
            "time": self._time,
            "ac:structured-macro": self._macro,
            "ac:macro": self._macro,
            "ac:link": self._link,
            "ac:task-list": self._task_list,
            "ac:adf-extension": self._adf_extension,
        }

    def children(self, node: LexborNode, out: _Text) -> None:
        child = node.first_child
        while child is not None:
            self.render(child, out)
            child = child.next

    def render(self, node: LexborNode, out: _Text) -> None:
        tag = node.tag
        if tag == "-text":
            out.text(node.text_content or "")
        elif tag is None or tag.startswith("-"):
            return  # comments, doctype
        elif handler := self._handlers.get(tag):
            handler(node, out)
        elif tag in _HEADING_LEVELS:
            heading = self._line(node)
            if heading:
                out.block(f"{'#' * _HEADING_LEVELS[tag]} {heading}")
        elif tag in _DROPPED_TAGS or tag.startswith("ri:"):
            return
        elif tag in _BLOCK_TAGS:
            out.para_break()
            self.children(node, out)
            out.para_break()
        else:
            self.children(node, out)  # inline formatting and unknown elements: keep their text

    def _flow(self, node: LexborNode) -> list[str]:
        """The children of ``node`` as separate blocks."""
        out = _Text()
        self.children(node, out)
        return out.blocks()

    def _line(self, node: LexborNode) -> str:
        """The text of ``node`` on a single line, for headings and table cells."""
        return " ".join(" ".join(self._flow(node)).split())

    def _list(self, node: LexborNode, out: _Text) -> None:
        ordered = node.tag == "ol"
        number = _int_attr(node, "start", 1)
        lines: list[str] = []
        # Anything but <li> directly in a list (e.g. a sub-list missing its <li>) belongs to the
        # previous item, so it is indented under it.
        loose = _Text()
        child = node.first_child
        while child is not None:
            if child.tag == "li":
                lines.extend(_indent(loose.blocks()))
                loose = _Text()
                item = _item(f"{number}. " if ordered else "- ", self._flow(child))
                if item:  # empty items are skipped, so they must not consume a number either
                    number += 1
                    lines.extend(item)
            else:
                self.render(child, loose)
            child = child.next
        lines.extend(_indent(loose.blocks()))
        out.block("\n".join(lines))

    def _table(self, node: LexborNode, out: _Text) -> None:
        lines: list[str] = []
        for child in _elements(node):
            if child.tag == "caption":
                lines.append(self._line(child))
            elif child.tag == "tr":
                lines.append(self._row(child))
            elif child.tag in ("thead", "tbody", "tfoot"):
                lines.extend(self._row(row) for row in _elements(child) if row.tag == "tr")
        out.block("\n".join(line for line in lines if line))

    def _row(self, row: LexborNode) -> str:
        cells = [self._line(cell) for cell in _elements(row) if cell.tag in ("td", "th")]
        return " | ".join(cells) if any(cells) else ""

    def _pre(self, node: LexborNode, out: _Text) -> None:
        out.block(node.text().strip("\n"))

    def _code(self, node: LexborNode, out: _Text) -> None:
        out.verbatim(node.text())

    def _time(self, node: LexborNode, out: _Text) -> None:
        # Storage format dates are empty <time datetime="..."/> elements.
        if node.text().strip():
            self.children(node, out)
        else:
            out.text(node.attributes.get("datetime") or "")

    def _macro(self, node: LexborNode, out: _Text) -> None:
        name = (node.attributes.get("ac:name") or "").strip().lower()
        if name in DROPPED_MACROS:
            return
        if name == "code":
            out.block(_code_block(node))
        elif name in _ADMONITION_LABELS or name in _TITLED_MACROS:
            title = _param(node, "title")
            body = "\n\n".join(self._macro_body(node))
            if body or title:
                heading = " ".join(filter(None, (_ADMONITION_LABELS.get(name), title)))
                out.block("\n".join(filter(None, (heading, body))))
        elif name in _INLINE_PARAM_MACROS:
            out.text(_param(node, _INLINE_PARAM_MACROS[name]))
        else:
            # Unknown macro: keep its body, inline if the body is inline, so that text-styling
            # macros do not split their paragraph.
            for child in _elements(node):
                if child.tag == "ac:rich-text-body":
                    self.children(child, out)
                elif child.tag == "ac:plain-text-body":
                    out.block(child.text().strip("\n"))

    def _macro_body(self, node: LexborNode) -> list[str]:
        blocks: list[str] = []
        for child in _elements(node):
            if child.tag == "ac:rich-text-body":
                blocks.extend(self._flow(child))
            elif child.tag == "ac:plain-text-body":
                blocks.append(child.text().strip("\n"))
        return [block for block in blocks if block.strip()]

    def _link(self, node: LexborNode, out: _Text) -> None:
        target: LexborNode | None = None
        body = ""
        for child in _elements(node):
            tag = child.tag or ""
            if tag.startswith("ri:") and target is None:
                target = child
            elif tag == "ac:plain-text-link-body":
                body = " ".join(child.text().split())
            elif tag == "ac:link-body":
                body = self._line(child)
        if target is not None and target.tag == "ri:user":
            ident = next(filter(None, (target.attributes.get(attr) for attr in _USER_ID_ATTRS)), "")
            name = self._users.get(ident) or body.removeprefix("@") or ident
            if name:
                out.text(f"@{name}")
            return
        if not body and target is not None:
            body = target.attributes.get(_LINK_TARGET_ATTRS.get(target.tag or "", "")) or ""
        out.text(body or node.attributes.get("ac:anchor") or "")

    def _task_list(self, node: LexborNode, out: _Text) -> None:
        out.block("\n".join(self._task_lines(node)))

    def _task_lines(self, node: LexborNode) -> list[str]:
        lines: list[str] = []
        for child in _elements(node):
            if child.tag == "ac:task":
                lines.extend(self._task(child))
            elif child.tag == "ac:task-list":
                lines.extend(_indent(self._task_lines(child)))
        return lines

    def _task(self, task: LexborNode) -> list[str]:
        done = False
        body: list[str] = []
        nested: list[str] = []
        for child in _elements(task):
            if child.tag == "ac:task-status":
                done = child.text().strip().lower() == "complete"
            elif child.tag == "ac:task-body":
                body = self._flow(child)
            elif child.tag == "ac:task-list":
                nested = _indent(self._task_lines(child))
        return _item("- [x] " if done else "- [ ] ", body) + nested

    def _adf_extension(self, node: LexborNode, out: _Text) -> None:
        # Cloud-editor extensions carry the real content plus a fallback rendering of the same text.
        nodes = [child for child in _elements(node) if child.tag == "ac:adf-node"]
        blocks = [block for child in nodes for block in self._flow(child)]
        if not blocks:
            fallbacks = [child for child in _elements(node) if child.tag == "ac:adf-fallback"]
            blocks = [block for child in fallbacks for block in self._flow(child)]
        out.block("\n\n".join(blocks))


def _elements(node: LexborNode) -> Iterator[LexborNode]:
    child = node.first_child
    while child is not None:
        if child.is_element_node:
            yield child
        child = child.next


def _param(macro: LexborNode, name: str) -> str:
    for child in _elements(macro):
        if child.tag == "ac:parameter" and child.attributes.get("ac:name") == name:
            return " ".join(child.text().split())
    return ""


def _code_block(macro: LexborNode) -> str:
    body = "".join(child.text() for child in _elements(macro) if child.tag == "ac:plain-text-body")
    body = body.strip("\n")
    if not body.strip():
        return ""
    return f"```{_param(macro, 'language')}\n{body}\n```"


def _item(marker: str, blocks: list[str]) -> list[str]:
    """A list item: marker on the first line, later lines indented under it, no blank lines."""
    lines = "\n".join(blocks).split("\n")
    if not lines[0]:
        return []
    return [marker + lines[0], *_indent(lines[1:])]


def _indent(lines: list[str]) -> list[str]:
    return ["  " + line if line else "" for line in "\n".join(lines).split("\n")] if lines else []


def _int_attr(node: LexborNode, name: str, default: int) -> int:
    try:
        return int(node.attributes.get(name) or default)
    except ValueError:
        return default
