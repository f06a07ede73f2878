"""Add per-source studies that ran as another invocation to a `recsys study --by_source` decomposition.

    python docs/results/add_sources.py <decomposition dir> <source> [<source> ...]

Each ``<decomposition dir>/<source>/`` must hold that source's finished study (same config, variants and
K); its row joins results.json / results.md and the heat map, through recsys.study.sources's own
functions. Used for the topology rows of criteo_by_source/ and the order and topology rows of
movielens_by_source/ (remedies.md), which ran after the first invocation.
"""
import json, os, sys
from recsys.study import sources

out, *added = sys.argv[1:]
path = os.path.join(out, "results.json")
payload = json.load(open(path))
for src in added:
    study = json.load(open(os.path.join(out, src, "results.json")))
    if [v["variant"] for v in study["variants"]] != payload["variants"]:
        raise SystemExit(f"{src}: other variants than the decomposition's {payload['variants']}")
    if study["options"]["replicas"] != payload["replicas"]:
        raise SystemExit(f"{src}: K={study['options']['replicas']}, the decomposition's is {payload['replicas']}")
    payload["table"][src] = {v: sources.cell(study, v) for v in payload["variants"]}
    payload["sources"].append(src)
    payload["studies"][src] = f"{src}/results.json"
    payload["shared"] += (f"; `{src}` ran as a separate invocation (same config, variants and K) and was "
                          "added to this table afterwards")
payload["finding"] = sources.finding(payload["table"], payload["baseline"])
sources.write(payload, out)
print(payload["finding"])
