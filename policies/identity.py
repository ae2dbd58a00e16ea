"""Who a record probably is: normalised names, e-mails, phones, addresses and organisation
names, the blocking keys that find candidates without scanning every record, and the
similarity of two names. Pure: no database, no clock.

The ledger (app.ledger.identity) stores a record's keys in indexed columns and, for a gift,
reads only the records that share a key with its donor; the rule possible_match
(policies.rules) turns a candidate's signals into a score with the policy's weights.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from functools import lru_cache

from rapidfuzz.distance import JaroWinkler

#: Candidates whose names are less alike than this are not passed to the policy. A policy's
#: threshold minus its bonuses may not go below it (policies.rules checks), so no candidate
#: the policy would hold is ever dropped here.
CANDIDATE_FLOOR = Decimal("0.80")
SCORE_PLACES = Decimal("0.0001")

#: Words that say nothing about who a person is.
_NAME_NOISE = frozenset({
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "jr", "sr", "ii", "iii",
    "iv", "phd", "md", "esq",
})
#: Legal forms and filler stripped from organisation names ("Halcyon Labs, Inc.").
_LEGAL_FORMS = frozenset({
    "inc", "incorporated", "llc", "l l c", "ltd", "limited", "corp", "corporation", "co",
    "company", "plc", "gmbh", "ag", "sa", "sas", "bv", "nv", "pbc", "lp", "llp", "pty",
    "the",
})
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def fold(text: str | None) -> str:
    """Lower case, accents folded (é -> e, ß -> ss), punctuation to spaces, one space."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", plain).split())


def name_tokens(name: str | None) -> list[str]:
    """A person's name as folded words, in the order given, titles and suffixes dropped."""
    return [t for t in fold(name).split() if t not in _NAME_NOISE]


@lru_cache(maxsize=65536)  # pure; a batch compares the same names often
def name_key(name: str | None) -> str:
    """The name's words sorted: "Chen, Morgan" and "Morgan Chen" give the same key."""
    return " ".join(sorted(name_tokens(name)))


def block_keys(name: str | None) -> tuple[str | None, str | None]:
    """Two blocking keys: the first word + the last word's first two letters, and the last
    word + the first word's first two letters. A record is a candidate when one of its keys
    equals one of the other's, so a typo past the second letter of either the given name or
    the surname, and a reversed order, still meet ("Morgen Chen", "Morgan Chan", "Chen,
    Morgan" all meet "Morgan Chen"). Two letters rather than one keep the candidates of a
    common name few (issue 11's bench); a given name written as an initial only ("M. Chen")
    is found through initial_keys and initial_prefixes.
    """
    tokens = name_tokens(name)
    # Numbers aside: "Morgan Chen 2" must meet "Morgan Chen" (see name_similarity).
    tokens = [t for t in tokens if not t.isdigit()] or tokens
    if not tokens:
        return None, None
    first, last = tokens[0], tokens[-1]
    if len(tokens) == 1:
        return f"{first}|", None
    return f"{first}|{last[:2]}", f"{last}|{first[:2]}"


def initial_keys(name: str | None) -> tuple[str, ...]:
    """The name's blocking keys cut to one letter after the bar: "Morgan Chen" gives
    "morgan|c" and "chen|m". A name written with an initial ("M. Chen") has such a key of
    its own ("chen|m"), so a full name finds it by these keys; and it finds the full names
    by initial_prefixes."""
    return tuple(dict.fromkeys(k[:k.index("|") + 2] for k in block_keys(name)
                               if k and not k.endswith("|")))


def initial_prefixes(name: str | None) -> tuple[str, ...]:
    """Keys of a name written with an initial ("M. Chen": "chen|m"), which every key of the
    same surname and that initial begins with ("chen|mo" of "Morgan Chen"): searched as
    prefixes. Empty for a name without a single-letter word."""
    return tuple(k for k in block_keys(name) if k and len(k) - k.index("|") == 2)


@lru_cache(maxsize=65536)  # pure; a common name meets the same names many times
def same_initial(a: str | None, b: str | None) -> bool:
    """One name gives a word as an initial only and the other agrees: every other word of
    the first is in the second, and the second has a further word starting with that
    letter ("M. Chen" and "Morgan Chen", "Chen, M." and "Morgan Chen"; not "M. Chen" and
    "Alex Chen"). Numbers aside, as in name_similarity."""
    x = [t for t in name_tokens(a) if not t.isdigit()]
    y = [t for t in name_tokens(b) if not t.isdigit()]
    return _initial_agrees(x, y) or _initial_agrees(y, x)


def _initial_agrees(short: list[str], full: list[str]) -> bool:
    initials = [t for t in short if len(t) == 1]
    words = [t for t in short if len(t) > 1]
    if len(initials) != 1 or not words or any(w not in full for w in words):
        return False
    return any(len(t) > 1 and t not in words and t[0] == initials[0] for t in full)


@lru_cache(maxsize=65536)  # pure; a batch compares the same names often
def email_key(email: str | None) -> str | None:
    """E-mail as compared: surrounding space and case aside. The one normaliser of e-mail:
    the matching key, and the column (donor.email_key) a second person record with an
    address already on file is refused by."""
    key = (email or "").strip().casefold()
    return key or None


@lru_cache(maxsize=65536)  # pure; a batch compares the same names often
def phone_key(phone: str | None) -> str | None:
    """The last ten digits of a phone number (country codes and punctuation aside); None
    for fewer than seven digits, too few to name one line."""
    digits = re.sub(r"\D", "", phone or "")
    return digits[-10:] if len(digits) >= 7 else None


@lru_cache(maxsize=65536)  # pure; a batch compares the same names often
def address_key(address: str | None) -> str | None:
    """A postal address folded, its words sorted: order, case and commas aside."""
    words = sorted(fold(address).split())
    return " ".join(words) or None


def organization_key(name: str | None) -> str:
    """An organisation's name without legal forms or punctuation: "Halcyon Labs, Inc." and
    "halcyon labs" give the same key."""
    words = [w for w in fold(name).split() if w not in _LEGAL_FORMS]
    return " ".join(words)


@lru_cache(maxsize=65536)  # pure; a common name meets the same names many times
def name_similarity(a: str | None, b: str | None) -> Decimal:
    """Jaro-Winkler similarity (0..1) of the two names' sorted folded words, truncated to
    four places; 0 when either has none, or when both hold numbers and they differ (a number
    on one name only is left out of the comparison)."""
    ka, kb = name_key(a), name_key(b)
    if not ka or not kb:
        return Decimal(0)
    numbers_a, numbers_b = _numbers(ka), _numbers(kb)
    if numbers_a and numbers_b and numbers_a != numbers_b:
        # Numbers in a name are labels ("Employee 364", "Donor 2"), not spelling: records
        # whose numbers differ are different records, however alike the rest.
        return Decimal(0)
    if numbers_a != numbers_b:
        # A number on one name only ("Morgan Chen 2") is no label against the other: it
        # would let anyone slip past the match by typing a digit. Compare without it.
        ka, kb = _without_numbers(ka), _without_numbers(kb)
        if not ka or not kb:
            return Decimal(0)
    value = Decimal(repr(JaroWinkler.normalized_similarity(ka, kb)))
    return value.quantize(SCORE_PLACES, rounding=ROUND_DOWN)


def _numbers(key: str) -> list[str]:
    return [t for t in key.split() if t.isdigit()]


def _without_numbers(key: str) -> str:
    return " ".join(t for t in key.split() if not t.isdigit())


@dataclass(frozen=True)
class Identity:
    """What is compared of a record (a donor or a roster entry)."""

    name: str
    email: str | None = None
    phone: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class Signals:
    name_similarity: Decimal
    same_email: bool = False
    same_phone: bool = False
    same_address: bool = False
    #: One name gives the given name as an initial only, and it agrees (same_initial).
    same_initial: bool = False

    @property
    def worth_passing(self) -> bool:
        """Close enough for the policy to look at (see CANDIDATE_FLOOR)."""
        return (self.same_email or self.same_phone or self.same_address or self.same_initial
                or self.name_similarity >= CANDIDATE_FLOOR)


def signals(a: Identity, b: Identity) -> Signals:
    def same(key, x, y) -> bool:
        kx, ky = key(x), key(y)
        return kx is not None and kx == ky

    return Signals(
        name_similarity=name_similarity(a.name, b.name),
        same_email=same(email_key, a.email, b.email),
        same_phone=same(phone_key, a.phone, b.phone),
        same_address=same(address_key, a.address, b.address),
        same_initial=same_initial(a.name, b.name),
    )


class SignalsAgainst:
    """signals(me, other) for one record against many (a common name's candidates): `me`'s
    keys are normalised once, not once per candidate. Gives what signals() gives
    (tests/policies/test_possible_match.py)."""

    def __init__(self, me: Identity):
        self.name = me.name
        self.email = email_key(me.email)
        self.phone = phone_key(me.phone)
        self.address = address_key(me.address)

    def __call__(self, name: str, email: str | None = None, phone: str | None = None,
                 address: str | None = None) -> Signals:
        return Signals(
            name_similarity(self.name, name),
            self.email is not None and email_key(email) == self.email,
            self.phone is not None and phone_key(phone) == self.phone,
            self.address is not None and address_key(address) == self.address,
            same_initial(self.name, name),
        )


def score_text(score: Decimal) -> str:
    """A score as shown: "1", "0.96", "0.9636" (no trailing zeros)."""
    return format(score.normalize(), "f")


def match_score(sig: Signals, *, phone_bonus: Decimal, address_bonus: Decimal,
                initial_score: Decimal | None = None) -> Decimal:
    """One number for "probably the same person": the same e-mail is 1; else the names'
    similarity (at least initial_score when one name gives an initial that agrees with the
    other, same_initial), raised by the same phone or postal address, at most 1."""
    if sig.same_email:
        return Decimal(1)
    score = sig.name_similarity
    if sig.same_initial and initial_score is not None:
        score = max(score, initial_score)
    if sig.same_phone:
        score += phone_bonus
    if sig.same_address:
        score += address_bonus
    return min(score, Decimal(1))
