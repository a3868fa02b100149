"""The voucher's QR code for the cashier's scanner: inline SVG made by segno, nothing fetched or stored."""

from __future__ import annotations

import segno


def qr_svg(text: str, *, scale: int = 5) -> str:
    """An <svg> element encoding `text` (error correction M, quiet zone kept for scanners); it has a viewBox
    and no fixed size, so the page's CSS sizes it for the screen."""
    code = segno.make(text, error="m", micro=False)
    return str(code.svg_inline(scale=scale, dark="#000", light="#fff", svgclass="voucher-qr", title=text,
                               omitsize=True))
