"""A generated Confluence space for the benchmarks, seeded deterministically into the emulator's state.

Pages carry storage-format bodies of a few KB like real wiki pages (headings, paragraphs with links, mentions and
formatting, lists, tables, a code macro, info panels, task lists), arranged in a page tree; about 5 % as many blog
posts as pages, about one small attachment (text, Markdown, CSV, Word) per 100 pages, and comments on about a third
of the pages (footer comments, some replies, some inline comments). All dates lie in the past (at least two days
ago) so that an incremental sync started later sees only what :func:`change_pages`, :func:`change_comments` and
:func:`relabel_pages` touch.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from tests.emulators.confluence import ConfluenceState, User

from bench.words import WORDS as _WORDS

SPACE_KEY = "BENCH"
SPACE_NAME = "Benchmark Engineering Wiki"
EMAIL = "bench@example.com"
TOKEN = "bench-api-token"

_LANGUAGES = ("python", "bash", "sql", "yaml", "json", "go")
_CODE = {
    "python": "def handle(event: dict) -> None:\n    order = parse(event)\n    if order.total > LIMIT:\n"
    "        raise ValueError('too large')\n    billing.charge(order)\n",
    "bash": "kubectl -n payments rollout status deploy/billing\nhelm upgrade --install billing charts/billing "
    "-f values-prod.yaml\n",
    "sql": "SELECT customer_id, sum(total) FROM orders\nWHERE created_at > now() - interval '7 days'\n"
    "GROUP BY customer_id ORDER BY 2 DESC LIMIT 20;\n",
    "yaml": "replicas: 3\nresources:\n  requests: {cpu: 250m, memory: 256Mi}\n  limits: {memory: 512Mi}\n",
    "json": '{\n  "id": "ord_123",\n  "amount": 1200,\n  "currency": "EUR",\n  "items": [1, 2, 3]\n}\n',
    "go": "func (s *Server) Handle(ctx context.Context, req *Request) (*Response, error) {\n"
    "\treturn s.store.Get(ctx, req.ID)\n}\n",
}
_LABELS = ("architecture", "runbook", "howto", "decision", "meeting-notes", "onboarding", "api", "incident", "faq")
_TOPICS = (
    "Billing",
    "Search",
    "Payments",
    "Notifications",
    "Identity",
    "Storage",
    "Gateway",
    "Analytics",
    "Mobile",
    "Platform",
    "Data",
    "Security",
)
_KINDS = ("Overview", "Runbook", "Design", "How-to", "FAQ", "Decision Record", "Meeting Notes", "Reference")
MAX_DEPTH = 6


@dataclass
class SeededSpace:
    """What was created: ids in creation order, so changes can be picked deterministically."""

    pages: list[str] = field(default_factory=list)
    blogposts: list[str] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    body_bytes: int = 0

    def summary(self) -> dict[str, int]:
        items = len(self.pages) + len(self.blogposts)
        return {
            "pages": len(self.pages),
            "blogposts": len(self.blogposts),
            "attachments": len(self.attachments),
            "comments": len(self.comments),
            "avg_body_bytes": round(self.body_bytes / items) if items else 0,
        }


class _Writer:
    def __init__(self, rng: random.Random, users: Sequence[User], titles: list[str]) -> None:
        self.rng = rng
        self.users = users
        self.titles = titles

    def words(self, n: int) -> str:
        return " ".join(self.rng.choices(_WORDS, k=n))

    def sentence(self) -> str:
        text = self.words(self.rng.randint(8, 20))
        return text[0].upper() + text[1:] + "."

    def inline(self) -> str:
        rng = self.rng
        parts = [self.sentence() for _ in range(rng.randint(2, 5))]
        roll = rng.random()
        if roll < 0.25 and self.titles:
            title = escape(rng.choice(self.titles), quote=True)
            parts.insert(
                rng.randrange(len(parts) + 1),
                f'See <ac:link><ri:page ri:content-title="{title}" /></ac:link> for details.',
            )
        elif roll < 0.4:
            user = rng.choice(self.users)
            parts.append(f'Owner: <ac:link><ri:user ri:account-id="{user.account_id}" /></ac:link>.')
        elif roll < 0.55:
            parts.insert(1, f"<strong>{self.words(3)}</strong> {self.words(5)}.")
        elif roll < 0.65:
            parts.append(f'Reference: <a href="https://example.com/{self.words(1)}">{self.words(3)}</a>.')
        return " ".join(parts)

    def paragraph(self) -> str:
        return f"<p>{self.inline()}</p>"

    def bullet_list(self) -> str:
        tag = self.rng.choice(("ul", "ol"))
        items = "".join(f"<li><p>{self.sentence()}</p></li>" for _ in range(self.rng.randint(3, 7)))
        return f"<{tag}>{items}</{tag}>"

    def table(self) -> str:
        cols = self.rng.randint(2, 4)
        head = "".join(f"<th><p>{self.words(1).title()}</p></th>" for _ in range(cols))
        rows = "".join(
            "<tr>" + "".join(f"<td><p>{self.words(self.rng.randint(1, 4))}</p></td>" for _ in range(cols)) + "</tr>"
            for _ in range(self.rng.randint(3, 6))
        )
        return f"<table><tbody><tr>{head}</tr>{rows}</tbody></table>"

    def code(self) -> str:
        lang = self.rng.choice(_LANGUAGES)
        return (
            '<ac:structured-macro ac:name="code" ac:schema-version="1">'
            f'<ac:parameter ac:name="language">{lang}</ac:parameter>'
            f"<ac:plain-text-body><![CDATA[{_CODE[lang]}]]></ac:plain-text-body></ac:structured-macro>"
        )

    def panel(self) -> str:
        kind = self.rng.choice(("info", "note", "warning", "tip"))
        return (
            f'<ac:structured-macro ac:name="{kind}" ac:schema-version="1">'
            f"<ac:rich-text-body>{self.paragraph()}</ac:rich-text-body></ac:structured-macro>"
        )

    def tasks(self) -> str:
        items = "".join(
            f"<ac:task><ac:task-id>{i + 1}</ac:task-id>"
            f"<ac:task-status>{self.rng.choice(('complete', 'incomplete'))}</ac:task-status>"
            f"<ac:task-body>{self.sentence()}</ac:task-body></ac:task>"
            for i in range(self.rng.randint(2, 4))
        )
        return f"<ac:task-list>{items}</ac:task-list>"

    def body(self, title: str) -> str:
        """A storage-format body of roughly 2-6 KB."""
        rng = self.rng
        target = rng.randint(2000, 6000)
        blocks = [f"<h1>{escape(title)}</h1>", self.paragraph()]
        extras = [self.bullet_list, self.table, self.code, self.panel, self.tasks]
        size = sum(len(b) for b in blocks)
        section = 0
        while size < target:
            section += 1
            part = [f"<h2>{self.words(3).title()}</h2>", self.paragraph()]
            part.append(rng.choice(extras)())
            if rng.random() < 0.5:
                part.append(self.paragraph())
            blocks.extend(part)
            size += sum(len(b) for b in part)
        if 'ac:name="code"' not in "".join(blocks):
            blocks.insert(2, self.code())
        return "".join(blocks)


def _docx(text: str) -> bytes:
    from docx import Document

    doc = Document()
    doc.add_heading("Meeting notes", 1)
    for line in text.split(". "):
        doc.add_paragraph(line)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def seed_space(
    state: ConfluenceState,
    pages: int,
    *,
    seed: int = 42,
    blogpost_ratio: float = 0.05,
    pages_per_attachment: int = 100,
    comment_share: float = 0.35,
    now: datetime | None = None,
) -> SeededSpace:
    """Create space BENCH with `pages` pages, blog posts and attachments, and the Cloud credentials."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    out = SeededSpace()
    state.add_cloud_token(EMAIL, TOKEN)
    state.add_space(SPACE_KEY, SPACE_NAME)
    users = [state.add_user(f"Engineer {i:02d}", f"engineer{i:02d}@example.com") for i in range(12)]
    titles: list[str] = []
    writer = _Writer(rng, users, titles)
    # Creation dates spread over two years, oldest first, ending two days ago.
    span = timedelta(days=730)
    newest = now - timedelta(days=2)
    depth: dict[str, int] = {}
    for i in range(pages):
        title = f"{rng.choice(_TOPICS)} {rng.choice(_KINDS)} {i + 1:05d}"
        created = newest - span * (1 - i / max(1, pages))
        parent: str | None = None
        if out.pages and rng.random() < 0.9:
            # Prefer recent pages as parents (sections grow together), within the depth limit.
            for _ in range(4):
                candidate = out.pages[max(0, len(out.pages) - 1 - int(rng.expovariate(1 / 40)))]
                if depth[candidate] < MAX_DEPTH:
                    parent = candidate
                    break
        body = writer.body(title)
        labels = rng.sample(_LABELS, rng.randint(0, 3))
        pid = state.add_page(
            SPACE_KEY, title, body, parent_id=parent, labels=labels, author=rng.choice(users), created=created
        )
        depth[pid] = 0 if parent is None else depth[parent] + 1
        out.pages.append(pid)
        out.body_bytes += len(body)
        titles.append(title)
    for i in range(math.ceil(pages * blogpost_ratio)):
        title = f"{rng.choice(_TOPICS)} update {i + 1:04d}"
        created = newest - span * (1 - i / max(1, pages * blogpost_ratio))
        body = writer.body(title)
        bid = state.add_blogpost(SPACE_KEY, title, body, labels=["news"], author=rng.choice(users), created=created)
        out.blogposts.append(bid)
        out.body_bytes += len(body)
    for i in range(max(3, pages // pages_per_attachment)):
        page = out.pages[rng.randrange(len(out.pages))]
        text = " ".join(writer.sentence() for _ in range(rng.randint(10, 40)))
        kind = i % 4
        if kind == 0:
            data, name, media = text.encode(), f"notes-{i:04d}.txt", "text/plain"
        elif kind == 1:
            data, name, media = f"# Checklist\n\n- {text}\n".encode(), f"checklist-{i:04d}.md", "text/markdown"
        elif kind == 2:
            rows = "\n".join(",".join(writer.words(1) for _ in range(4)) for _ in range(20))
            data, name, media = f"a,b,c,d\n{rows}\n".encode(), f"export-{i:04d}.csv", "text/csv"
        else:
            data = _docx(text)
            name = f"minutes-{i:04d}.docx"
            media = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        out.attachments.append(state.add_attachment(page, name, data, media))
    # Attachments were stamped with the emulator's clock: move them into the past like everything else.
    with state.lock:
        for att_id in out.attachments:
            att = state.get(att_id)
            att.created = att.when = newest
    _seed_comments(state, out, writer, users, newest, comment_share)
    return out


def _seed_comments(
    state: ConfluenceState, out: SeededSpace, writer: _Writer, users: Sequence[User], at: datetime, share: float
) -> None:
    """On `share` of the pages: one to three footer comments, a reply to some, an inline comment on some."""
    rng = writer.rng
    for page in out.pages:
        if rng.random() >= share:
            continue
        for _ in range(rng.randint(1, 3)):
            author = rng.choice(users)
            first = state.add_comment(page, f"<p>{writer.inline()}</p>", author=author, created=at)
            out.comments.append(first)
            if rng.random() < 0.3:
                reply = state.add_comment(page, f"<p>{writer.sentence()}</p>", reply_to=first, created=at)
                out.comments.append(reply)
        if rng.random() < 0.2:
            inline = state.add_comment(
                page, f"<p>{writer.sentence()}</p>", location="inline", selection=writer.words(3), created=at
            )
            out.comments.append(inline)


def change_comments(state: ConfluenceState, space: SeededSpace, fraction: float, *, seed: int = 11) -> list[str]:
    """Edit `fraction` of the comments (new body, new version, modified now); returns their ids."""
    rng = random.Random(seed)
    chosen = rng.sample(space.comments, max(1, round(len(space.comments) * fraction))) if space.comments else []
    for cid in chosen:
        state.update_comment(cid, f"<p>Edited comment {rng.random():.6f}</p>")
    return chosen


def relabel_pages(state: ConfluenceState, space: SeededSpace, fraction: float, *, seed: int = 13) -> list[str]:
    """Add a label to `fraction` of the pages as the label dialog does: no new version, `lastmodified` unchanged."""
    rng = random.Random(seed)
    chosen = rng.sample(space.pages, max(1, round(len(space.pages) * fraction)))
    for pid in chosen:
        state.add_labels(pid, "reviewed")
    return chosen


def change_pages(state: ConfluenceState, space: SeededSpace, fraction: float, *, seed: int = 7) -> list[str]:
    """Edit `fraction` of the pages (new body, new version, modified now); returns their ids."""
    rng = random.Random(seed)
    count = max(1, round(len(space.pages) * fraction))
    chosen = rng.sample(space.pages, count)
    writer = _Writer(rng, [state.default_user], [])
    for pid in chosen:
        title = state.get(pid).title
        state.update_page(pid, body=writer.body(title) + f"<p>Edited {rng.random():.6f}</p>")
    return chosen


TEAMS = ("team-payments", "team-search", "team-platform")


def restrict_pages(state: ConfluenceState, space: SeededSpace, share: float, *, seed: int = 11) -> list[str]:
    """Give `share` of the pages a read restriction of their own, as teams do: to a team's group (half), to a
    group and a few people (a third), or to named people only; the benchmark account is in every team and among
    the named people, so it reads (and indexes) them all. Descendants inherit the restrictions. No new versions."""
    rng = random.Random(seed)
    bench = state.user_by_email(EMAIL)
    assert bench is not None
    for team in TEAMS:
        state.add_member(team, bench)
    people = [u for u in state.users.values() if u.email.startswith("engineer")]
    chosen = rng.sample(space.pages, round(len(space.pages) * share))
    for pid in chosen:
        roll = rng.random()
        if roll < 0.5:
            state.set_restrictions(pid, read_groups=[rng.choice(TEAMS)])
        elif roll < 0.85:
            state.set_restrictions(pid, read_groups=[rng.choice(TEAMS)], read_users=rng.sample(people, 2))
        else:
            state.set_restrictions(pid, read_users=[bench, *rng.sample(people, 2)])
    return chosen


def change_restrictions(state: ConfluenceState, space: SeededSpace, fraction: float, *, seed: int = 5) -> int:
    """Restrictions change on `fraction` of the pages without new versions: half of them lose theirs (or gain one,
    if they had none), as someone opening or locking pages in the UI does. Returns how many changed."""
    rng = random.Random(seed)
    chosen = rng.sample(space.pages, max(1, round(len(space.pages) * fraction)))
    for pid in chosen:
        if state.get(pid).restrictions["read"]:
            state.clear_restrictions(pid)
        else:
            state.set_restrictions(pid, read_groups=[rng.choice(TEAMS)])
    return len(chosen)


def datasource_body(
    ns: str,
    name: str,
    endpoint: str,
    *,
    blogposts: bool = False,
    attachments: bool = False,
    comments: bool = False,
    permissions: str | None = None,
) -> dict[str, Any]:
    """The Datasource every benchmark syncs: the generated space, read by the benchmark account."""
    body = {
        "apiVersion": "coco.rs/v1alpha1",
        "kind": "Datasource",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "name": f"Wiki {name}",
            "type": "connector",
            "enabled": True,
            "connector": {
                "id": "confluence",
                "config": {
                    "endpoint": endpoint,
                    "username": EMAIL,
                    "tokenSecretRef": {"name": "confluence-token", "key": "token"},
                    "space": SPACE_KEY,
                    "enable_blogposts": blogposts,
                    "enable_attachments": attachments,
                    "enable_comments": comments,
                },
            },
            "sync": {"enabled": True, "interval": "1h"},
        },
    }
    if permissions is not None:
        body["spec"]["permissions"] = {"mode": permissions}  # type: ignore[index]
    return body
