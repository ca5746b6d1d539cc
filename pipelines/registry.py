"""The one list of vendors.

Adding a vendor: its room in sources/, its staging SQL, one line here.
"""

from sources.common.vendor import Vendor
from sources.exsited import VENDOR as EXSITED
from sources.meteroid import VENDOR as METEROID
from sources.press import VENDOR as PRESS
from sources.revolv3 import VENDOR as REVOLV3
from sources.sequence import VENDOR as SEQUENCE

VENDORS: dict[str, Vendor] = {
    vendor.name: vendor
    for vendor in (
        EXSITED,
        METEROID,
        PRESS,
        REVOLV3,
        SEQUENCE,
    )
}
