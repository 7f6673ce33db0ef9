"""Every phone number Bridgeline reads goes through here: parsed, checked and kept in E.164."""

from __future__ import annotations

import hashlib
from enum import Enum

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

DEFAULT_REGION = "US"
"""Region assumed for numbers written without a country code."""

DIALABLE_REGIONS = frozenset({"US", "CA"})
"""Regions Bridgeline dials (toll-fraud guard). Judged by the number's region, not its country
code: +1 is shared by 25 countries and territories (+1 876 Jamaica, +1 809 Dominican Republic),
whose numbers cost international rates and are the classic callback-fraud targets."""

BARRED_TYPES = frozenset({PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST})
"""Number types Bridgeline never dials, wherever they are (+1 900 and the like)."""


class NumberProblem(str, Enum):
    """Why a number given for a callback or a transfer was refused."""

    INVALID = "invalid"
    PREMIUM_RATE = "premium_rate"
    OUTSIDE_US_CANADA = "outside_us_canada"


class PhoneNumberError(ValueError):
    """A number that cannot be used, with the reason as a NumberProblem."""

    def __init__(self, problem: NumberProblem) -> None:
        self.problem = problem
        super().__init__(problem.value)


def parse_e164(raw: str, region: str = DEFAULT_REGION) -> str:
    """Parse any usual spelling of a valid number and return it as E.164; raise otherwise."""
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException:
        raise PhoneNumberError(NumberProblem.INVALID) from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneNumberError(NumberProblem.INVALID)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def dialable_number(raw: str, region: str = DEFAULT_REGION, *, international: bool = False) -> str:
    """A number Bridgeline may dial, as E.164: valid, not premium-rate, and in the United States
    or Canada unless `international` (a line an operator explicitly marked so); raise otherwise.

    Every number that is dialed, offered back to a caller or configured as a line or a roster
    member is checked here, so the rule lives in one place.
    """
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException:
        raise PhoneNumberError(NumberProblem.INVALID) from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneNumberError(NumberProblem.INVALID)
    if phonenumbers.number_type(number) in BARRED_TYPES:
        raise PhoneNumberError(NumberProblem.PREMIUM_RATE)
    if not international and phonenumbers.region_code_for_number(number) not in DIALABLE_REGIONS:
        raise PhoneNumberError(NumberProblem.OUTSIDE_US_CANADA)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def callback_number(raw: str, region: str = DEFAULT_REGION) -> str:
    """A number Bridgeline may call back: valid, in the United States or Canada, not premium."""
    return dialable_number(raw, region)


def national_digits(e164: str) -> str:
    """The ten digits a North American caller would key in, for reading a number back."""
    return e164[2:] if e164.startswith("+1") else e164.lstrip("+")


def fingerprint(value: str) -> str:
    """A short one-way tag for a number, so logs can correlate without showing it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:10]
