"""Calibration targets and region facts, from ``shared/reference/region-facts.md``.

The figures are embedded here (the shared folder is not part of an installed package); a test
checks them against the Markdown source so the two cannot drift apart. Deprivation levels per
municipality are Brygga's own coarse assumption for synthetic data (socioeconomically strong
suburbs low, areas with many low-income households high), not official statistics.
"""

from __future__ import annotations

__all__ = [
    "AGE_SHARES",
    "DEATHS_PER_1000",
    "LIFE_EXPECTANCY",
    "REGIONS",
    "SKANE",
    "STOCKHOLM",
    "Municipality",
    "RegionFacts",
    "region_facts",
]

from dataclasses import dataclass

from brygga.errors import InputError


@dataclass(frozen=True)
class Municipality:
    code: str
    name: str
    population: int
    deprivation: float  # mean deprivation quintile of residents, 1 (least) to 5 (most)


@dataclass(frozen=True)
class RegionFacts:
    key: str
    name: str
    county: str
    municipalities: tuple[Municipality, ...]
    hospitals: tuple[tuple[str, str], ...]  # (municipality code, hospital name)

    @property
    def population(self) -> int:
        """The sum of the municipalities (region-facts.md rounds it: "about 1.42 million")."""
        return sum(m.population for m in self.municipalities)

    def municipality(self, code: str) -> Municipality:
        for m in self.municipalities:
            if m.code == code:
                return m
        raise KeyError(code)


def _m(rows: str) -> tuple[Municipality, ...]:
    out = []
    for line in rows.strip().splitlines():
        code, name, pop, dep = (p.strip() for p in line.split("|"))
        out.append(Municipality(code, name, int(pop.replace(",", "")), float(dep)))
    return tuple(out)


SKANE = RegionFacts(
    "skane",
    "Skåne",
    "Skåne län",
    _m(
        """
        1280 | Malmö | 362,100 | 3.9
        1283 | Helsingborg | 151,300 | 3.3
        1281 | Lund | 128,400 | 2.4
        1290 | Kristianstad | 87,300 | 3.1
        1293 | Hässleholm | 53,000 | 3.1
        1287 | Trelleborg | 47,000 | 3.0
        1282 | Landskrona | 46,800 | 3.8
        1292 | Ängelholm | 43,700 | 2.4
        1233 | Vellinge | 37,500 | 1.5
        1285 | Eslöv | 35,000 | 3.0
        1261 | Kävlinge | 33,100 | 2.1
        1286 | Ystad | 31,400 | 2.8
        1284 | Höganäs | 27,700 | 2.2
        1230 | Staffanstorp | 26,900 | 1.9
        1262 | Lomma | 25,900 | 1.4
        1263 | Svedala | 23,300 | 2.2
        1231 | Burlöv | 20,400 | 3.4
        1265 | Sjöbo | 19,500 | 3.1
        1291 | Simrishamn | 19,300 | 2.9
        1276 | Klippan | 17,700 | 3.5
        1264 | Skurup | 17,000 | 2.8
        1267 | Höör | 17,000 | 2.6
        1277 | Åstorp | 16,300 | 3.7
        1260 | Bjuv | 16,000 | 3.6
        1266 | Hörby | 15,800 | 3.2
        1278 | Båstad | 15,500 | 2.3
        1256 | Östra Göinge | 15,200 | 3.5
        1214 | Svalöv | 14,600 | 3.2
        1270 | Tomelilla | 13,700 | 3.3
        1273 | Osby | 13,300 | 3.4
        1272 | Bromölla | 12,800 | 3.3
        1257 | Örkelljunga | 10,600 | 3.4
        1275 | Perstorp | 7,600 | 3.6
        """
    ),
    (
        ("1280", "Skånes universitetssjukhus Malmö"),
        ("1281", "Skånes universitetssjukhus Lund"),
        ("1283", "Helsingborgs lasarett"),
        ("1290", "Centralsjukhuset Kristianstad"),
        ("1286", "Lasarettet i Ystad"),
        ("1293", "Hässleholms sjukhus"),
        ("1282", "Lasarettet i Landskrona"),
        ("1287", "Lasarettet i Trelleborg"),
        ("1292", "Ängelholms sjukhus"),
    ),
)

STOCKHOLM = RegionFacts(
    "stockholm",
    "Stockholm",
    "Stockholms län",
    _m(
        """
        0180 | Stockholm | 988,900 | 2.8
        0126 | Huddinge | 115,500 | 3.2
        0182 | Nacka | 109,000 | 2.0
        0181 | Södertälje | 102,300 | 4.0
        0136 | Haninge | 97,000 | 3.4
        0127 | Botkyrka | 96,400 | 4.1
        0184 | Solna | 86,000 | 2.5
        0123 | Järfälla | 85,900 | 3.3
        0163 | Sollentuna | 77,000 | 2.4
        0160 | Täby | 75,600 | 1.7
        0188 | Norrtälje | 64,100 | 3.1
        0183 | Sundbyberg | 54,000 | 3.1
        0191 | Sigtuna | 50,800 | 3.7
        0138 | Tyresö | 48,900 | 2.5
        0114 | Upplands Väsby | 48,700 | 3.3
        0186 | Lidingö | 48,500 | 1.5
        0117 | Österåker | 47,600 | 2.2
        0120 | Värmdö | 47,400 | 2.3
        0115 | Vallentuna | 35,300 | 2.2
        0162 | Danderyd | 33,800 | 1.2
        0139 | Upplands-Bro | 31,000 | 3.2
        0125 | Ekerö | 29,500 | 1.8
        0192 | Nynäshamn | 29,200 | 3.2
        0128 | Salem | 17,600 | 2.6
        0187 | Vaxholm | 12,300 | 1.6
        0140 | Nykvarn | 11,900 | 2.8
        """
    ),
    (
        ("0184", "Karolinska universitetssjukhuset Solna"),
        ("0126", "Karolinska universitetssjukhuset Huddinge"),
        ("0162", "Danderyds sjukhus"),
        ("0180", "Södersjukhuset"),
        ("0180", "S:t Görans sjukhus"),
        ("0181", "Södertälje sjukhus"),
        ("0188", "Norrtälje sjukhus"),
    ),
)

REGIONS: dict[str, RegionFacts] = {r.key: r for r in (SKANE, STOCKHOLM)}


def region_facts(key: str) -> RegionFacts:
    try:
        return REGIONS[key.lower()]
    except KeyError:
        raise InputError(f"unknown region {key!r}; choose one of: {', '.join(REGIONS)}") from None


# Age structure of Sweden (share of residents), tolerance 10 % relative.
AGE_SHARES = {"0-19": 0.22, "20-64": 0.57, "65+": 0.205, "80+": 0.055}
LIFE_EXPECTANCY = {"male": 81.3, "female": 84.8}
DEATHS_PER_1000 = 9.0
