"""Travel distances between municipalities, for "how far can you travel to a study site".

Distances are great-circle kilometres between municipality seats (approximate coordinates of
the central town, to about 1 km). That is coarse on purpose: a resident gives only their
municipality, and the question is "Malmö to Lund" rather than door to door.
"""

from __future__ import annotations

__all__ = ["EARTH_RADIUS_KM", "SEATS", "distance_km", "known", "within_reach"]

import math

# SCB kommunkod -> (latitude, longitude) of the municipality seat.
SEATS: dict[str, tuple[float, float]] = {
    # Skåne
    "1280": (55.605, 13.003), "1283": (56.046, 12.695), "1281": (55.705, 13.191),
    "1290": (56.029, 14.156), "1293": (56.159, 13.766), "1287": (55.376, 13.157),
    "1282": (55.870, 12.830), "1292": (56.243, 12.862), "1233": (55.472, 13.019),
    "1285": (55.839, 13.304), "1261": (55.794, 13.110), "1286": (55.430, 13.820),
    "1284": (56.200, 12.557), "1230": (55.642, 13.206), "1262": (55.673, 13.070),
    "1263": (55.508, 13.235), "1231": (55.637, 13.083), "1265": (55.631, 13.706),
    "1291": (55.557, 14.350), "1276": (56.134, 13.130), "1264": (55.479, 13.500),
    "1267": (55.937, 13.541), "1277": (56.135, 12.944), "1260": (56.084, 12.920),
    "1266": (55.855, 13.662), "1278": (56.426, 12.852), "1256": (56.254, 14.077),
    "1214": (55.913, 13.108), "1270": (55.544, 13.954), "1273": (56.381, 13.994),
    "1272": (56.074, 14.467), "1257": (56.283, 13.278), "1275": (56.137, 13.395),
    # Stockholm
    "0180": (59.329, 18.069), "0126": (59.237, 17.982), "0182": (59.310, 18.164),
    "0181": (59.196, 17.626), "0136": (59.168, 18.143), "0127": (59.200, 17.833),
    "0184": (59.360, 18.001), "0123": (59.423, 17.835), "0163": (59.428, 17.951),
    "0160": (59.444, 18.069), "0188": (59.758, 18.705), "0183": (59.361, 17.972),
    "0191": (59.622, 17.855), "0138": (59.244, 18.229), "0114": (59.518, 17.911),
    "0186": (59.367, 18.133), "0117": (59.480, 18.300), "0120": (59.326, 18.389),
    "0115": (59.534, 18.078), "0162": (59.400, 18.033), "0139": (59.478, 17.752),
    "0125": (59.291, 17.812), "0192": (58.903, 17.948), "0128": (59.194, 17.769),
    "0187": (59.402, 18.352), "0140": (59.178, 17.431),
}  # fmt: skip

EARTH_RADIUS_KM = 6371.0


def known(code: str) -> bool:
    return code in SEATS


def distance_km(a: str, b: str) -> float | None:
    """Great-circle distance between two municipality seats; None if either is unknown."""
    if a == b:
        return 0.0
    if a not in SEATS or b not in SEATS:
        return None
    (lat1, lon1), (lat2, lon2) = SEATS[a], SEATS[b]
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def within_reach(home: str | None, sites: list[str], max_km: int | None) -> bool:
    """Can someone living in ``home`` who travels at most ``max_km`` reach one of the sites?

    ``max_km`` None means "any distance". An unknown home or site municipality only matches a
    site in the same municipality (we cannot tell the distance, so we do not guess).
    """
    if max_km is None:
        return True
    if home is None:
        return False
    for site in sites:
        d = distance_km(home, site)
        if d is not None and d <= max_km:
            return True
    return False
