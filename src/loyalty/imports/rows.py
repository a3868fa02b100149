"""Parsing CSV rows into typed import rows; every problem names its line."""

from __future__ import annotations

import csv
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from loyalty.errors import LoyaltyError
from loyalty.transactions.schemas import MAX_AMOUNT


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class LineItem:
    sku: str
    category: str | None
    quantity: int
    unit_price: int


@dataclass(frozen=True, slots=True)
class TransactionRow:
    line: int
    transaction_id: str
    store_id: str
    customer: str | None
    occurred_at: datetime
    amount: int
    currency: str
    type: str
    original_transaction_id: str | None
    lines: tuple[LineItem, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class CustomerRow:
    line: int
    phone: str | None
    email: str | None
    card: str | None
    external_id: str | None
    namespace: str | None
    name: str | None
    birthday: date | None
    gender: str | None
    city: str | None
    preferred_channel: str | None
    consent_email: bool
    consent_sms: bool
    consent_zalo: bool
    consent_phone: bool
    store_id: str | None
    enrolled_at: datetime | None


class CsvHeaderError(LoyaltyError):
    status = 422
    type_slug = "csv-header"
    title = "The CSV header is not valid"


TRANSACTION_REQUIRED = ("transaction_id", "store_id", "customer", "occurred_at", "amount")
TRANSACTION_OPTIONAL = ("type", "original_transaction_id", "currency")
CUSTOMER_COLUMNS = ("phone", "email", "card", "external_id", "namespace", "name", "birthday", "gender", "city",
                    "preferred_channel", "consent_email", "consent_sms", "consent_zalo", "consent_phone",
                    "store_id", "enrolled_at")
_TRUE = {"true", "1", "yes", "y", "x"}
_FALSE = {"false", "0", "no", "n", ""}


def read_rows(path: Path) -> tuple[list[str], Generator[tuple[int, list[str]], None, None]]:
    """The header, then (line number, values) lazily: plain lists, no dict per row.

    Blank lines are skipped and line numbers count physical lines, as with csv.DictReader.
    """
    handle = path.open(newline="", encoding="utf-8-sig")
    reader = csv.reader(handle)
    try:
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error) as exc:
        handle.close()
        raise _unreadable(path, exc, reader.line_num) from None
    if header is None:
        handle.close()
        raise CsvHeaderError(f"{path}: the file is empty")

    def lines() -> Generator[tuple[int, list[str]], None, None]:
        with handle:
            try:
                for values in reader:
                    if values:
                        yield reader.line_num, values
            except (UnicodeDecodeError, csv.Error) as exc:
                raise _unreadable(path, exc, reader.line_num) from None
    return header, lines()


class CsvFileError(LoyaltyError):
    """The file cannot be read as CSV from some line on; the batches before that line are imported."""

    status = 422
    type_slug = "csv-file"
    title = "The CSV file cannot be read"


def _unreadable(path: Path, exc: UnicodeDecodeError | csv.Error, line: int) -> CsvFileError:
    """`line`: the reader's count of lines read, the failing one included (csv.Error)."""
    if isinstance(exc, UnicodeDecodeError):
        # The decoder reads ahead in blocks, so the reader's line count is not the bad byte's line.
        line = _first_line_not_utf8(path)
        return CsvFileError(f"line {line}: the file is not UTF-8 text (byte {exc.object[exc.start]:#04x}); "
                            "save it as CSV UTF-8 and import it again (rows already imported are skipped)")
    return CsvFileError(f"line {max(line, 1)}: {exc}; rows before it were imported, "
                        "correct the file and import it again (rows already imported are skipped)")


def _first_line_not_utf8(path: Path) -> int:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


class _RowInvalid(Exception):
    pass


def _checked(value: str, name: str, required: bool, limit: int) -> str | None:
    """A stripped field's value, None when empty; refused when required and empty, or too long."""
    if not value:
        if required:
            raise _RowInvalid(f"{name} is empty")
        return None
    if len(value) > limit:
        raise _RowInvalid(f"{name} is longer than {limit} characters")
    if "\x00" in value:  # PostgreSQL cannot store it in text, and SQLite must not keep what PostgreSQL refuses
        raise _RowInvalid(f"{name} contains a NUL character")
    return value


def _text(row: dict[str, str], name: str, *, required: bool = False, limit: int = 200) -> str | None:
    return _checked((row.get(name) or "").strip(), name, required, limit)


def _moment(value: str, tz: ZoneInfo, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _RowInvalid(f"{name} {value!r} is not an ISO 8601 date and time") from None
    # POS exports often carry local times: a time without offset is read in the business zone.
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def _bool(row: dict[str, str], name: str) -> bool:
    value = (row.get(name) or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _RowInvalid(f"{name} {value!r} is not true or false")


def check_header(header: Iterable[str], required: Iterable[str], known: Iterable[str]) -> None:
    names = list(header)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        # Which of two `amount` columns is the amount? Refuse rather than guess.
        raise CsvHeaderError(f"line 1: column(s) {', '.join(repeated)} appear more than once")
    columns = set(names)
    missing = [c for c in required if c not in columns]
    if missing:
        raise CsvHeaderError(f"line 1: the header lacks {', '.join(missing)}")
    unknown = sorted(columns - set(required) - set(known))
    if unknown:
        raise CsvHeaderError(f"line 1: unknown column(s) {', '.join(unknown)}; expected {', '.join(known)}")


def _field(values: Sequence[str], index: int, name: str, *, required: bool = False,
           limit: int = 200) -> str | None:
    return _checked(values[index].strip() if 0 <= index < len(values) else "", name, required, limit)


class TransactionParser:
    """Parses transaction rows of a file with `header` by column position (the import's hot path)."""

    __slots__ = ("_amount", "_currency", "_customer", "_occurred_at", "_original", "_store", "_transaction",
                 "_type", "tz")

    def __init__(self, header: Sequence[str], tz: ZoneInfo) -> None:
        position = {name: index for index, name in enumerate(header)}  # check_header refuses repeated columns
        self.tz = tz
        self._transaction = position.get("transaction_id", -1)
        self._store = position.get("store_id", -1)
        self._customer = position.get("customer", -1)
        self._occurred_at = position.get("occurred_at", -1)
        self._amount = position.get("amount", -1)
        self._type = position.get("type", -1)
        self._original = position.get("original_transaction_id", -1)
        self._currency = position.get("currency", -1)

    def __call__(self, line: int, values: Sequence[str]) -> TransactionRow | RowError:
        try:
            amount_text = _field(values, self._amount, "amount", required=True) or ""
            try:
                amount = int(amount_text.replace("_", ""))
            except ValueError:
                raise _RowInvalid(f"amount {amount_text!r} is not a whole number") from None
            if amount < 0:
                raise _RowInvalid("amount is negative; record a return with type=return instead")
            if amount > MAX_AMOUNT:
                raise _RowInvalid(f"amount {amount_text} is more than {MAX_AMOUNT:,}, the most one sale can be")
            kind = (_field(values, self._type, "type") or "purchase").lower()
            if kind not in ("purchase", "return"):
                raise _RowInvalid(f"type {kind!r} is not purchase or return")
            original = _field(values, self._original, "original_transaction_id", limit=64)
            if kind == "return" and original is None:
                raise _RowInvalid("a return needs original_transaction_id")
            if kind == "return" and amount == 0:
                raise _RowInvalid("a return needs a positive amount")
            currency = (_field(values, self._currency, "currency") or "VND").upper()
            if len(currency) != 3 or not currency.isalpha():
                raise _RowInvalid(f"currency {currency!r} is not a 3-letter code")
            return TransactionRow(
                line=line, transaction_id=_field(values, self._transaction, "transaction_id", required=True,
                                                 limit=64) or "",
                store_id=_field(values, self._store, "store_id", required=True, limit=32) or "",
                customer=_field(values, self._customer, "customer"),
                occurred_at=_moment(_field(values, self._occurred_at, "occurred_at", required=True) or "",
                                    self.tz, "occurred_at"),
                amount=amount, currency=currency, type=kind, original_transaction_id=original,
            )
        except _RowInvalid as exc:
            return RowError(line, str(exc))


def parse_transaction(line: int, row: dict[str, str], tz: ZoneInfo) -> TransactionRow | RowError:
    """One row given as a dict (the file path goes through TransactionParser)."""
    return TransactionParser(list(row), tz)(line, ["" if v is None else v for v in row.values()])


def customer_parser(header: Sequence[str], tz: ZoneInfo) -> Callable[[int, Sequence[str]], CustomerRow | RowError]:
    names = list(header)

    def parse(line: int, values: Sequence[str]) -> CustomerRow | RowError:
        return parse_customer(line, dict(zip(names, values, strict=False)), tz)
    return parse


def parse_customer(line: int, row: dict[str, str], tz: ZoneInfo) -> CustomerRow | RowError:
    try:
        birthday_text = _text(row, "birthday")
        try:
            birthday = date.fromisoformat(birthday_text) if birthday_text else None
        except ValueError:
            raise _RowInvalid(f"birthday {birthday_text!r} is not a date (YYYY-MM-DD)") from None
        gender = (_text(row, "gender") or "").lower() or None
        if gender not in (None, "female", "male", "other"):
            raise _RowInvalid(f"gender {gender!r} is not female, male or other")
        channel = (_text(row, "preferred_channel") or "").lower() or None
        if channel not in (None, "email", "sms", "zalo", "phone"):
            raise _RowInvalid(f"preferred_channel {channel!r} is not email, sms, zalo or phone")
        enrolled_text = _text(row, "enrolled_at")
        result = CustomerRow(
            line=line, phone=_text(row, "phone", limit=30), email=_text(row, "email"),
            card=_text(row, "card", limit=40),
            external_id=_text(row, "external_id"), namespace=_text(row, "namespace", limit=32),
            name=_text(row, "name"), birthday=birthday, gender=gender, city=_text(row, "city", limit=100),
            preferred_channel=channel, consent_email=_bool(row, "consent_email"),
            consent_sms=_bool(row, "consent_sms"), consent_zalo=_bool(row, "consent_zalo"),
            consent_phone=_bool(row, "consent_phone"), store_id=_text(row, "store_id", limit=32),
            enrolled_at=_moment(enrolled_text, tz, "enrolled_at") if enrolled_text else None,
        )
        if not (result.phone or result.email or result.card or result.external_id):
            raise _RowInvalid("a customer needs at least one of phone, email, card or external_id")
        if result.external_id and not result.namespace:
            raise _RowInvalid("external_id needs its namespace (the store or partner that issued it)")
        return result
    except _RowInvalid as exc:
        return RowError(line, str(exc))
