"""The demo's ministry API: international arrivals by province and month, as JSON over HTTP.

It stands for a ministry system the hub does not own (here the tourism authority's arrivals
statistics) and that the hub reads as the federated source ``tourism`` (hub/demo/sources.toml).
Every figure is synthetic, from a fixed seed. ``make run`` starts it beside the hub:

    python -m nrhub.demo.tourism_api [--host 127.0.0.1] [--port 8101]

    GET /api/v1/arrivals?provinces=01,79,VN&months=2026-M09,2026-M10
    → {"data": [{"province": "79", "month": "2026-M10", "arrivals": 512345, "status": "PRELIMINARY"}, …]}

Provinces are the 34 in force since 2025-07-01, from July 2025; ``VN`` (the whole country) goes
back to January 2021.
"""

from __future__ import annotations

import argparse
import random

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nrhub.demo.reference import read_csv
from nrhub.demo.synthetic import LAST_MONTH, REFORM, SEED
from nrhub.resolvers.periods import Period, period_range

FIRST_NATIONAL = Period(2021, 1, "M")
# The big gateways get most arrivals: Ha Noi, Da Nang, Khanh Hoa, Ho Chi Minh City, Quang Ninh.
_GATEWAYS = {"01": 6.0, "48": 4.0, "56": 3.5, "79": 7.0, "22": 2.0}
_SEASON = [1.25, 1.2, 1.05, 0.95, 0.85, 0.85, 1.0, 1.0, 0.85, 0.9, 1.0, 1.1]


def arrivals(province: str, month: Period) -> int:
    """Arrivals to one province (or VN, their sum) in one month after the reform."""
    if province == "VN":
        return sum(arrivals(p, month) for p in provinces())
    rng = random.Random(f"{SEED}:tourism:{province}:{month}")
    size = _GATEWAYS.get(province, random.Random(f"{SEED}:tourism:{province}").uniform(0.05, 0.6))
    trend = 1.01 ** ((month.year - 2025) * 12 + month.start_month)
    return round(60_000 * size * _SEASON[month.start_month - 1] * trend * rng.uniform(0.9, 1.1))


def national_before_reform(month: Period) -> int:
    rng = random.Random(f"{SEED}:tourism:VN:{month}")
    recovery = min(1.0, 0.15 + 0.85 * ((month.year - 2021) * 12 + month.start_month) / 30)
    return round(1_500_000 * recovery * _SEASON[month.start_month - 1] * rng.uniform(0.92, 1.08))


def provinces() -> list[str]:
    return [r["code"] for r in read_csv("provinces.csv")]


def _rows(wanted_provinces: list[str], wanted_months: list[str]) -> list[dict[str, object]]:
    known = set(provinces()) | {"VN"}
    months = {str(p): p for p in period_range(FIRST_NATIONAL, LAST_MONTH)}
    rows = []
    for code in wanted_provinces:
        for text in wanted_months:
            month = months.get(text)
            if code not in known or month is None or (code != "VN" and month < REFORM):
                continue
            value = arrivals(code, month) if month >= REFORM else national_before_reform(month)
            status = "PRELIMINARY" if month == LAST_MONTH else "OFFICIAL"
            rows.append({"province": code, "month": text, "arrivals": value, "status": status})
    return rows


async def arrivals_endpoint(request: Request) -> JSONResponse:
    wanted = [p for p in request.query_params.get("provinces", "").split(",") if p]
    months = [m for m in request.query_params.get("months", "").split(",") if m]
    return JSONResponse({"data": _rows(wanted, months)})


app = Starlette(routes=[Route("/api/v1/arrivals", arrivals_endpoint, methods=["GET"])])


def main() -> None:
    parser = argparse.ArgumentParser(description="The demo's ministry API (international arrivals).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
