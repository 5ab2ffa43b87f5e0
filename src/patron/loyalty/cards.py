"""Card numbers (with a Luhn check digit), voucher codes, and the card drawn as images."""

from __future__ import annotations

import io
import secrets

from stdnum import luhn

CARD_LENGTH = 16
# Voucher codes are read out at tills and typed by people: no 0/O, 1/I/L, 2/Z, 5/S, 8/B.
VOUCHER_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
VOUCHER_GROUPS = 3


def new_card_number(prefix: str) -> str:
    """prefix + random digits + check digit, 16 digits. Random, not sequential, so that a
    card number found on a receipt does not lead to the next member's."""
    body = prefix + "".join(secrets.choice("0123456789") for _ in range(CARD_LENGTH - 1 - len(prefix)))
    return body + luhn.calc_check_digit(body)


def is_card_number(value: str) -> bool:
    """Whether `value` is 16 digits with a valid check digit (catches one mistyped digit
    and most swapped neighbours before a lookup)."""
    return len(value) == CARD_LENGTH and value.isdigit() and luhn.is_valid(value)


def new_voucher_code() -> str:
    """Like 'K7QD-MX3T-W9AC': 60 bits of randomness, so codes cannot be guessed."""
    groups = ("".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(4)) for _ in range(VOUCHER_GROUPS))
    return "-".join(groups)


def normalise_voucher_code(value: str) -> str:
    """What a person typed, as stored: upper case, dashes where they belong."""
    compact = "".join(ch for ch in value.upper() if ch.isalnum())
    return "-".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def barcode_svg(card_number: str) -> bytes:
    """The card number as a Code 128 barcode (what till scanners read), as SVG."""
    # Imported here: every order import loads this module, and only card pages draw.
    import barcode
    from barcode.writer import SVGWriter

    out = io.BytesIO()
    barcode.get("code128", card_number, writer=SVGWriter()).write(
        out, options={"module_height": 12.0, "font_size": 8, "text_distance": 4.0, "quiet_zone": 4.0}
    )
    return out.getvalue()


def qr_svg(card_number: str) -> bytes:
    """The card number as a QR code (what phone wallets and newer scanners read), as SVG."""
    import segno

    out = io.BytesIO()
    segno.make(card_number, error="m").save(out, kind="svg", scale=5, border=2, xmldecl=False)
    return out.getvalue()
