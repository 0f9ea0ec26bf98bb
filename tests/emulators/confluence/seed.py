"""Seeded sites: a small realistic demo site, and a space with users, groups, permissions and restricted pages.

``seed_demo`` is what ``hack/demo.sh`` serves. ``seed_permissions`` builds the permission model issue 15 tests
against: groups with members, a space that only some groups may view, another open to anonymous users, and a
share of restricted pages (some nested under restricted parents, some restricted to users, some to groups).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from .model import JSON, Edition, User
from .state import ConfluenceState


def _mention(user: User, edition: Edition) -> str:
    attr = f'ri:account-id="{user.account_id}"' if edition == "cloud" else f'ri:userkey="{user.user_key}"'
    return f"<ac:link><ri:user {attr} /></ac:link>"


def _code(language: str, code: str) -> str:
    return (
        f'<ac:structured-macro ac:name="code" ac:schema-version="1">'
        f'<ac:parameter ac:name="language">{language}</ac:parameter>'
        f"<ac:plain-text-body><![CDATA[{code}]]></ac:plain-text-body></ac:structured-macro>"
    )


def _panel(kind: str, html: str) -> str:
    return (
        f'<ac:structured-macro ac:name="{kind}" ac:schema-version="1">'
        f"<ac:rich-text-body>{html}</ac:rich-text-body></ac:structured-macro>"
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th><p>{h}</p></th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td><p>{v}</p></td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tbody><tr>{head}</tr>{body}</tbody></table>"


def seed_demo(state: ConfluenceState, *, edition: Edition = "cloud") -> JSON:
    """Create a small, realistic site: DOCS (page tree, blog posts, attachments) and OPS, plus demo credentials."""
    alice = state.add_user("Alice Nguyen", "alice@example.com")
    bob = state.add_user("Bob Martin", "bob@example.com")
    carol = state.add_user("Carol Diaz", "carol@example.com")
    state.add_cloud_token("demo@example.com", "demo-token")
    state.add_pat("demo-pat", "admin")
    state.add_password("admin", "admin")
    state.add_space("DOCS", "Engineering Docs")
    state.add_space("OPS", "Operations")
    base = state.now() - timedelta(days=30)
    pages: dict[str, str] = {}

    def page(title: str, body: str, parent: str | None, labels: Sequence[str], day: int, who: User) -> str:
        pid = state.add_page(
            "DOCS",
            title,
            body,
            parent_id=pages.get(parent) if parent else None,
            labels=labels,
            author=who,
            created=base + timedelta(days=day, hours=9),
        )
        pages[title] = pid
        return pid

    drawio = (
        '<ac:structured-macro ac:name="drawio" ac:schema-version="1" ac:macro-id="6f0c2a7e-0d1b-4c1e-9a53-drawio01">'
        '<ac:parameter ac:name="diagramName">platform-architecture</ac:parameter>'
        '<ac:parameter ac:name="revision">3</ac:parameter></ac:structured-macro>'
    )
    page(
        "Engineering Docs Home",
        "<h1>Welcome</h1><p>This space holds the engineering handbook: architecture, onboarding and runbooks.</p>"
        + _panel("info", "<p>Start with the <strong>Onboarding Guide</strong> if you are new.</p>")
        + "<ul><li><p>Architecture Overview</p></li><li><p>Runbooks</p></li><li><p>API Reference</p></li></ul>",
        None,
        ["home", "handbook"],
        0,
        alice,
    )
    page(
        "Architecture Overview",
        "<h1>Architecture Overview</h1><p>The platform is a set of small services behind an API gateway.</p>"
        + drawio
        + "<h2>Principles</h2><ol><li><p>Services own their data.</p></li><li><p>Events over calls.</p></li>"
        "<li><p>Everything observable.</p></li></ol>"
        + _table(["Layer", "Technology"], [["Edge", "Envoy"], ["Services", "Python, Go"], ["Storage", "Postgres"]]),
        "Engineering Docs Home",
        ["architecture"],
        1,
        alice,
    )
    page(
        "Service Catalogue",
        "<h1>Service Catalogue</h1>"
        + _table(
            ["Service", "Owner", "Tier"],
            [["billing", "Payments", "1"], ["search", "Discovery", "2"], ["notifications", "Platform", "2"]],
        ),
        "Architecture Overview",
        ["architecture", "services"],
        2,
        bob,
    )
    page(
        "Data Flow",
        "<h1>Data Flow</h1><p>Orders flow from the storefront through Kafka into the billing service.</p>"
        + _code("python", "def handle(event: dict) -> None:\n    order = parse(event)\n    billing.charge(order)\n"),
        "Architecture Overview",
        ["architecture", "kafka"],
        3,
        bob,
    )
    page(
        "Onboarding Guide",
        "<h1>Onboarding Guide</h1><p>Your buddy for the first weeks is "
        + _mention(carol, edition)
        + ".</p><h2>First week</h2><ul><li><p>Get laptop and accounts</p></li>"
        "<li><p>Set up the development environment</p></li><li><p>Ship a small change</p></li></ul>"
        + _panel("note", "<p>Ask for access to the on-call rotation only after your second month.</p>"),
        "Engineering Docs Home",
        ["onboarding"],
        4,
        carol,
    )
    page(
        "Development Environment Setup",
        "<h1>Development Environment Setup</h1><p>Install the toolchain:</p>"
        + _code("bash", "brew install python@3.11 kubectl helm\nmake bootstrap\n")
        + _panel("warning", "<p>Never use production credentials locally.</p>"),
        "Onboarding Guide",
        ["onboarding", "tooling"],
        5,
        carol,
    )
    page(
        "Code Review Guidelines",
        "<h1>Code Review Guidelines</h1><ul><li><p>Small pull requests</p></li>"
        "<li><p>Tests for every bug fix</p></li><li><p>Review within one working day</p></li></ul>"
        "<p>Questions go to " + _mention(bob, edition) + ".</p>",
        "Onboarding Guide",
        ["onboarding", "process"],
        6,
        bob,
    )
    page(
        "Runbooks",
        "<h1>Runbooks</h1><p>Step by step procedures for operating the platform.</p>",
        "Engineering Docs Home",
        ["runbook"],
        7,
        alice,
    )
    page(
        "Deploying to Production",
        "<h1>Deploying to Production</h1><ol><li><p>Merge to main</p></li><li><p>Wait for the canary</p></li>"
        "<li><p>Promote</p></li></ol>"
        + _code("bash", "helm upgrade --install billing charts/billing -f values-prod.yaml\n")
        + _panel("warning", "<p>No deploys on Friday afternoons.</p>"),
        "Runbooks",
        ["runbook", "deploy"],
        8,
        alice,
    )
    page(
        "Incident Response",
        "<h1>Incident Response</h1><p>Incident commander this quarter: "
        + _mention(alice, edition)
        + ".</p>"
        + _table(["Severity", "Response time"], [["SEV1", "15 minutes"], ["SEV2", "1 hour"], ["SEV3", "next day"]]),
        "Runbooks",
        ["runbook", "incident"],
        9,
        carol,
    )
    page(
        "Database Migrations",
        "<h1>Database Migrations</h1><p>Migrations must be backwards compatible.</p>"
        + _code("sql", "ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'EUR';\n"),
        "Runbooks",
        ["runbook", "database"],
        10,
        bob,
    )
    page(
        "API Reference",
        "<h1>API Reference</h1>"
        + _table(["Method", "Path", "Purpose"], [["GET", "/v1/orders", "List"], ["POST", "/v1/orders", "Create"]])
        + _code("json", '{\n  "id": "ord_123",\n  "amount": 1200,\n  "currency": "EUR"\n}\n'),
        "Engineering Docs Home",
        ["api"],
        11,
        alice,
    )
    page(
        "Glossary",
        "<h1>Glossary</h1>"
        + _table(["Term", "Meaning"], [["SLO", "Service level objective"], ["Canary", "Partial rollout"]]),
        "Engineering Docs Home",
        ["glossary"],
        12,
        carol,
    )
    legacy = page("Legacy Build System", "<p>Replaced by the new pipelines in 2023.</p>", None, ["legacy"], 13, bob)
    state.archive(legacy)

    blogs: dict[str, str] = {}
    for day, (title, body, who) in enumerate(
        [
            ("Welcome to the new handbook", "<p>We moved all engineering docs into this space.</p>", alice),
            ("Q3 reliability review", "<p>Availability was 99.95%. " + _mention(bob, edition) + " led it.</p>", bob),
            ("Postgres 16 upgrade done", "<p>All clusters now run Postgres 16.</p>", carol),
        ]
    ):
        blogs[title] = state.add_blogpost(
            "DOCS", title, body, labels=["news"], author=who, created=base + timedelta(days=14 + day)
        )

    attachments = {
        "architecture-notes.txt": state.add_attachment(
            pages["Architecture Overview"],
            "architecture-notes.txt",
            b"Gateway: Envoy\nServices talk over gRPC\nEvents over Kafka\n",
            "text/plain",
            comment="notes from the design review",
        ),
        "setup-checklist.md": state.add_attachment(
            pages["Development Environment Setup"],
            "setup-checklist.md",
            b"# Setup checklist\n\n- [ ] laptop\n- [ ] VPN\n- [ ] `make bootstrap`\n",
            "text/markdown",
        ),
    }

    ops: dict[str, str] = {}
    ops["Operations Home"] = state.add_page(
        "OPS", "Operations Home", "<h1>Operations</h1><p>On-call, dashboards and capacity.</p>", labels=["ops"]
    )
    for title, body in [
        ("On-call Rotation", _table(["Week", "Primary"], [["1", "Alice"], ["2", "Bob"], ["3", "Carol"]])),
        ("Monitoring Dashboards", "<p>Grafana folder <em>platform</em> holds the golden signals.</p>"),
    ]:
        ops[title] = state.add_page("OPS", title, body, parent_id=ops["Operations Home"], labels=["ops"])

    # One later edit so that version numbers and lastmodified differ from creation.
    state.update_page(pages["Incident Response"], body=state.get(pages["Incident Response"]).body, editor=bob)
    # A footer discussion with a reply and an inline remark, as pages accumulate them.
    question = state.add_comment(
        pages["Deploying to Production"], "<p>Do canaries also run on Fridays?</p>", author=bob
    )
    state.add_comment(
        pages["Deploying to Production"], "<p>No: the freeze covers canaries too.</p>", author=alice, reply_to=question
    )
    state.add_comment(
        pages["Incident Response"],
        "<p>SEV2 is 30 minutes since the last review.</p>",
        author=carol,
        location="inline",
        selection="1 hour",
    )
    return {
        "spaces": ["DOCS", "OPS"],
        "pages": pages,
        "blogposts": blogs,
        "attachments": attachments,
        "ops_pages": ops,
        "users": {"alice": alice, "bob": bob, "carol": carol},
        "cloud": {"email": "demo@example.com", "token": "demo-token"},
        "dc": {"pat": "demo-pat", "username": "admin", "password": "admin"},
    }


@dataclass
class PermissionSeed:
    """What :func:`seed_permissions` built. Readers are decided by ``permissions.can_read`` against the state."""

    space: str
    open_space: str
    users: dict[str, User]
    groups: dict[str, list[str]]  # group name -> usernames
    pages: list[str]
    restricted: list[str]  # pages with a read restriction of their own
    hidden_by_ancestor: list[str]  # unrestricted pages below a restricted one
    attachments: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    credentials: dict[str, str] = field(default_factory=dict)  # username -> classic API token


_PEOPLE = [
    ("Dana Ortiz", ["engineering", "leadership"]),
    ("Evan Price", ["engineering"]),
    ("Fiona Shah", ["engineering"]),
    ("Gus Kim", ["hr"]),
    ("Hana Ito", ["hr", "leadership"]),
    ("Ivan Petrov", ["contractors"]),
    ("Jia Wong", ["engineering", "contractors"]),
    ("Kofi Mensah", []),
]


def seed_permissions(
    state: ConfluenceState,
    *,
    space: str = "SEC",
    open_space: str = "PUB",
    pages: int = 60,
    restricted_share: float = 0.15,
    seed: int = 7,
) -> PermissionSeed:
    """Users in groups; ``space`` viewable by engineering, hr and leadership (not contractors, not everyone);
    ``open_space`` open to anonymous users; a page tree in ``space`` where ``restricted_share`` of the pages
    carry read restrictions (to a group, to named users, or on a section whose descendants inherit it), plus an
    edit-only restriction that hides nothing, and attachments and comments on restricted pages."""
    rng = random.Random(seed)
    users: dict[str, User] = {}
    groups: dict[str, list[str]] = {}
    tokens: dict[str, str] = {}
    for name, member_of in _PEOPLE:
        email = name.split()[0].lower() + "@example.com"
        user = state.add_user(name, email, groups=member_of)
        users[user.username] = user
        tokens[user.username] = f"token-{user.username}"
        state.add_cloud_token(email, tokens[user.username])
        for g in member_of:
            groups.setdefault(g, []).append(user.username)
    state.add_space(space, "Secure Team Space", default_access=False)
    for g in ("engineering", "hr", "leadership"):
        state.grant(space, group=g)
    state.add_space(open_space, "Public Handbook")
    state.grant(open_space, anonymous=True)
    state.add_page(open_space, "Welcome", "<p>Anyone may read this.</p>")

    ids: list[str] = []
    sections = [state.add_page(space, f"Section {i}", f"<p>Section {i}</p>") for i in range(max(1, pages // 10))]
    ids.extend(sections)
    while len(ids) < pages:
        parent = rng.choice(ids)
        ids.append(state.add_page(space, f"Page {len(ids)}", f"<p>Body {len(ids)}</p>", parent_id=parent))

    restricted: list[str] = []
    people = list(users.values())
    for pid in rng.sample(ids, max(1, int(len(ids) * restricted_share))):
        roll = rng.random()
        if roll < 0.5:
            state.set_restrictions(pid, read_groups=[rng.choice(["hr", "leadership"])])
        elif roll < 0.8:
            state.set_restrictions(pid, read_users=rng.sample(people, 2))
        else:
            state.set_restrictions(pid, read_groups=["engineering"], read_users=[rng.choice(people)])
        restricted.append(pid)
    open_pages = [p for p in ids if p not in restricted]
    state.set_restrictions(open_pages[0], update_groups=["leadership"])  # edit-only: hides nothing
    by_id = {pid: state.get(pid) for pid in ids}
    hidden = [pid for pid in open_pages if any(a.id in restricted for a in state.ancestors(by_id[pid]))]
    attachments = [
        state.add_attachment(pid, f"notes-{pid}.txt", b"restricted notes", "text/plain") for pid in restricted[:3]
    ]
    comments = [state.add_comment(pid, "<p>Who else can see this?</p>") for pid in restricted[:3]]
    return PermissionSeed(space, open_space, users, groups, ids, restricted, hidden, attachments, comments, tokens)
