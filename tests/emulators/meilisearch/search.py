"""`POST /indexes/{uid}/search`: request validation, matching, ranking rules, sorting and paging.

Emulated parameters: q, filter, sort, offset, limit, attributesToRetrieve, matchingStrategy `last` (the default).
Matching folds case and accents, takes the last query word as a prefix and tolerates typos with the default
thresholds (one typo from 5 letters, two from 9); phrase and negative operators are not emulated.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from .documents import covers, flatten, leaves, shown, values_at
from .errors import (
    JSON,
    MeiliError,
    camel_to_snake,
    expect_object,
    expect_str,
    expect_str_list,
    expect_uint,
    not_emulated,
    reject_unknown_fields,
)
from .filters import check_filterable, matches, parse_filter
from .text import match_word, query_terms, words

MAX_TOTAL_HITS = 1000  # Meilisearch's default pagination.maxTotalHits
SEARCH_FIELDS = (
    "q", "vector", "media", "offset", "limit", "page", "hitsPerPage", "attributesToRetrieve", "retrieveVectors",
    "attributesToCrop", "cropLength", "attributesToHighlight", "showMatchesPosition", "showRankingScore",
    "showRankingScoreDetails", "showPerformanceDetails", "filter", "sort", "distinct", "facets", "highlightPreTag",
    "highlightPostTag", "cropMarker", "matchingStrategy", "attributesToSearchOn", "hybrid", "rankingScoreThreshold",
    "locales", "personalize",
)  # fmt: skip
_EMULATED = ("q", "offset", "limit", "attributesToRetrieve", "filter", "sort", "matchingStrategy")


@dataclass
class SearchRequest:
    q: str
    offset: int
    limit: int
    retrieve: list[str] | None
    sort: list[tuple[str, bool]]
    filter: Any  # as given: a tenant token's rule is fused with it before parsing


def validate_request(body: Any) -> SearchRequest:
    """The checks made while the request is deserialized (a synchronous 400)."""
    params = expect_object(body)
    reject_unknown_fields(params, SEARCH_FIELDS)
    for name, value in params.items():
        if value is None:
            continue
        code, path = f"invalid_search_{camel_to_snake(name)}", f".{name}"
        if name not in _EMULATED:
            raise not_emulated(f"The `{name}` search parameter")
        if name == "q":
            expect_str(value, code, path)
        elif name in ("offset", "limit"):
            expect_uint(value, code, path)
        elif name in ("attributesToRetrieve", "sort"):
            expect_str_list(value, code, path)
        elif name == "matchingStrategy":
            _check_strategy(value, code)
    return SearchRequest(
        q=params.get("q") or "",
        offset=params.get("offset") or 0,
        limit=20 if params.get("limit") is None else params["limit"],
        retrieve=params.get("attributesToRetrieve"),
        sort=_parse_sort(params.get("sort") or []),
        filter=params.get("filter"),
    )


def _check_strategy(value: Any, code: str) -> None:
    if value not in ("last", "all", "frequency"):
        expect_str(value, code, ".matchingStrategy")
        raise MeiliError(
            code, f"Unknown value `{value}` at `.matchingStrategy`: expected one of `last`, `all`, `frequency`"
        )
    if value != "last":
        raise not_emulated(f"The `{value}` matching strategy")


def _parse_sort(sort: list[str]) -> list[tuple[str, bool]]:
    parsed: list[tuple[str, bool]] = []
    for item in sort:
        attr, sep, direction = item.rpartition(":")
        if not sep or not attr or direction not in ("asc", "desc"):
            raise MeiliError(
                "invalid_search_sort",
                "Invalid syntax for the sort parameter: expected expression ending by `:asc` or `:desc`, found "
                f"`{item}`.",
            )
        if attr.startswith("_geo"):
            raise not_emulated("Sorting by geo distance")
        parsed.append((attr, direction == "asc"))
    return parsed


def run(uid: str, docs: list[JSON], settings: JSON, request: SearchRequest) -> JSON:
    """Search one index; the engine's errors name the index, as Meilisearch's do."""
    started = time.perf_counter()
    node = parse_filter(request.filter, "invalid_search_filter")
    try:
        if node is not None:
            check_filterable(node, settings["filterableAttributes"], "invalid_search_filter")
        _check_sortable(request.sort, settings)
    except MeiliError as exc:
        raise exc.in_index(uid) from None
    candidates = [(i, d) for i, d in enumerate(docs) if node is None or matches(node, d)]
    ranked = _rank(candidates, request.q, settings, request.sort)
    total = min(len(ranked), MAX_TOTAL_HITS)
    window = ranked[min(request.offset, total) : min(request.offset + request.limit, total)]
    return {
        "hits": [shown(doc, request.retrieve) for doc in window],
        "query": request.q,
        "processingTimeMs": int((time.perf_counter() - started) * 1000),
        "limit": request.limit,
        "offset": request.offset,
        "estimatedTotalHits": total,
    }


def _check_sortable(sort: list[tuple[str, bool]], settings: JSON) -> None:
    sortable = settings["sortableAttributes"]
    for attr, _ in sort:
        if not covers(sortable, attr):
            tail = (
                f"Available sortable attributes are: `{', '.join(sorted(set(sortable)))}`."
                if sortable
                else "This index does not have configured sortable attributes."
            )
            raise MeiliError("invalid_search_sort", f"Attribute `{attr}` is not sortable. {tail}")
    if sort and "sort" not in settings["rankingRules"]:
        raise MeiliError(
            "invalid_search_sort",
            "You must specify where `sort` is listed in the rankingRules setting to use the sort parameter at search "
            "time.",
        )


@dataclass
class _Match:
    typos: int
    exact: bool
    rank: int  # the searchable attribute's rank
    positions: dict[int, list[int]]  # field number -> word positions


def _rank(candidates: list[tuple[int, JSON]], q: str, settings: JSON, sort: list[tuple[str, bool]]) -> list[JSON]:
    terms, prefix = query_terms(q)
    rules = settings["rankingRules"]
    keyed: list[tuple[tuple[Any, ...], JSON]] = []
    for order, doc in candidates:
        features: JSON = {}
        if terms:
            found = _features(terms, prefix, _fields(doc, settings["searchableAttributes"]))
            if found is None:
                continue
            features = found
        keyed.append((_ranking_key(features, doc, order, rules, sort), doc))
    keyed.sort(key=lambda item: item[0])
    return [doc for _, doc in keyed]


def _fields(doc: JSON, searchable: list[str]) -> list[tuple[int, list[str]]]:
    """(attribute rank, words) of every searchable scalar of a document."""
    if "*" in searchable:
        top = {key: i for i, key in enumerate(doc)}
        pairs = [(top[path.split(".")[0]], v) for path, v in flatten(doc) if not path.startswith("_vectors")]
    else:
        pairs = [(r, x) for r, a in enumerate(searchable) for v in values_at(doc, a) for _, x in flatten(v)]
    out: list[tuple[int, list[str]]] = []
    for rank, value in pairs:
        if isinstance(value, bool):
            value = "true" if value else "false"
        if isinstance(value, str | int | float):
            out.append((rank, words(str(value))))
    return out


def _match_term(term: str, prefix: bool, fields: list[tuple[int, list[str]]]) -> _Match | None:
    best: _Match | None = None
    for number, (rank, tokens) in enumerate(fields):
        hits = [(pos, hit) for pos, token in enumerate(tokens) if (hit := match_word(term, token, prefix))]
        if not hits:
            continue
        typos, exact = min(h[0] for _, h in hits), any(h[1] for _, h in hits)
        if best is None:
            best = _Match(typos, exact, rank, {})
        best.typos, best.exact, best.rank = min(best.typos, typos), best.exact or exact, min(best.rank, rank)
        best.positions[number] = [pos for pos, _ in hits]
    return best


def _features(terms: list[str], prefix: bool, fields: list[tuple[int, list[str]]]) -> JSON | None:
    """Ranking features of a document, None when it does not match. Strategy `last`: query words are dropped
    from the end until the document matches, and a document matching more words ranks higher."""
    used: list[_Match] = []
    for i, term in enumerate(terms):
        found = _match_term(term, prefix and i == len(terms) - 1, fields)
        if found is None:
            break
        used.append(found)
    if not used:
        return None
    proximity = 0
    for a, b in itertools.pairwise(used):
        gaps = [
            min(abs(q - p) for p in a.positions[f] for q in b.positions[f]) for f in a.positions if f in b.positions
        ]
        proximity += min([min(g, 7) for g in gaps] or [8])
    return {
        "words": -len(used),
        "typo": sum(m.typos for m in used),
        "proximity": proximity,
        "attributeRank": min(m.rank for m in used),
        "wordPosition": min(min(p) for m in used for p in m.positions.values()),
        "exactness": -sum(m.exact for m in used),
    }


def _ranking_key(
    features: JSON, doc: JSON, order: int, rules: list[str], sort: list[tuple[str, bool]]
) -> tuple[Any, ...]:
    key: list[Any] = []
    for rule in rules:
        if rule == "sort":
            key.extend(_sort_key(doc, attr, asc) for attr, asc in sort)
        elif rule == "attribute":  # the name before 1.50 for attributeRank then wordPosition
            key.extend(features.get(r, 0) for r in ("attributeRank", "wordPosition"))
        elif rule in features:
            key.append(features[rule])
        elif rule.endswith((":asc", ":desc")):
            attr, _, direction = rule.rpartition(":")
            key.append(_sort_key(doc, attr, direction == "asc"))
    key.append(order)
    return tuple(key)


def _sort_key(doc: JSON, attr: str, ascending: bool) -> tuple[Any, ...]:
    """Numbers before strings; documents without the field last in both directions."""
    found = leaves(values_at(doc, attr))
    numbers = [float(v) for v in found if isinstance(v, int | float) and not isinstance(v, bool)]
    strings = [v.strip().lower() for v in found if isinstance(v, str)]
    if numbers:
        return (0, min(numbers) if ascending else -max(numbers))
    if strings:
        return (1, min(strings)) if ascending else (1, _Desc(max(strings)))
    return (2, 0)


class _Desc:
    """A string compared in reverse, for descending sorts inside tuple keys."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)
