"""scan's options for a Dask cluster (kept here so the command module only registers them)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the cluster code is loaded only when --dask is given
    from burstwatch.parallel.cluster import DaskCluster


def add_dask_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cluster (Dask; pip install 'burstwatch[dask]')")
    g.add_argument("--dask", metavar="ADDRESS",
                   help="run the flow shards as tasks on this Dask scheduler "
                        "(e.g. tcp://10.0.0.5:8786); not with standard input, --separate or --state")
    g.add_argument("--dask-dir", metavar="DIR",
                   help="directory every worker and this host can reach, for the shards' rows "
                        "(default: a temporary directory here, for workers on this host)")


def dask_cluster(args: argparse.Namespace) -> DaskCluster | None:
    if not args.dask:
        return None
    from burstwatch.parallel.cluster import DaskCluster

    return DaskCluster(args.dask, args.dask_dir)
