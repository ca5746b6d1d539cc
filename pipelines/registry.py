"""The one list of vendors.

Adding a vendor: its room in sources/, its staging SQL, one line here.
"""

from sources.common.vendor import Vendor
from sources.meteroid import VENDOR as METEROID

VENDORS: dict[str, Vendor] = {
    vendor.name: vendor
    for vendor in (
        METEROID,
    )
}
