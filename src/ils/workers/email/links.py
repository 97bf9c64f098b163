"""Links in e-mails: back to the platform, and to a carrier's tracking page.

Every link is built here from ``settings.public_url`` and record ids, so when the
web pages move, one module changes. Tracking numbers come from a lab's form: they
are percent-encoded into the carrier's URL, never pasted in raw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

#: Tracking pages of the carriers UK and US labs ship with, by normalised name.
CARRIER_TRACKING: Final[dict[str, str]] = {
    "royalmail": "https://www.royalmail.com/track-your-item#/tracking-results/{number}",
    "parcelforce": "https://www.parcelforce.com/track-trace?trackNumber={number}",
    "dpd": "https://track.dpd.co.uk/parcels/{number}",
    "evri": "https://www.evri.com/track/parcel/{number}",
    "hermes": "https://www.evri.com/track/parcel/{number}",
    "ups": "https://www.ups.com/track?tracknum={number}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={number}",
    "dhl": "https://www.dhl.com/global-en/home/tracking/tracking-express.html?tracking-id={number}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
}
_NOT_ALNUM: Final = re.compile(r"[^a-z0-9]")


def tracking_url(carrier: str | None, tracking_number: str) -> str | None:
    """The carrier's tracking page for ``tracking_number``, ``None`` for a carrier we
    do not know (the e-mail then shows the number alone)."""
    if not carrier:
        return None
    template = CARRIER_TRACKING.get(_NOT_ALNUM.sub("", carrier.lower()))
    if template is None:
        return None
    return template.format(number=quote(tracking_number.strip(), safe=""))


@dataclass(frozen=True, slots=True)
class PlatformLinks:
    """Pages of the platform, from its public base URL (``ILS_PUBLIC_URL``)."""

    base: str

    @property
    def home(self) -> str:
        return f"{self.base}/"

    def order(self, order_id: str) -> str:
        return f"{self.base}/orders/{quote(order_id, safe='')}"

    def purchase_order(self, po_id: str) -> str:
        return f"{self.base}/purchase-orders/{quote(po_id, safe='')}"

    @property
    def connections(self) -> str:
        return f"{self.base}/marketplace/connections"
