"""The empirical ceiling: coverage at n per model, and union coverage over all models.

coverage(model)  = share of problems with c > 0 among its n samples (= pass@n),
union coverage   = share of problems with c > 0 for at least one model,
which bounds what any of these models could reach by sampling more from the same pool.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

UNION = "union"


def coverage(table: pd.DataFrame) -> float:
    """Share of problems with at least one correct sample."""
    return float((table["c"] > 0).mean())


def solved_matrix(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Boolean problem_id x model table of c > 0; models must share one problem set."""
    if not tables:
        raise ValueError("no models given")
    columns: dict[str, pd.Series] = {}
    for name, table in tables.items():
        ids = table["problem_id"].astype(str)
        if ids.duplicated().any():
            raise ValueError(
                f"model {name!r}: duplicate problem_id {ids[ids.duplicated()].iloc[0]!r}"
            )
        if columns:
            _check_same_problems(*next(iter(columns.items())), name, ids)
        columns[name] = pd.Series(table["c"].to_numpy() > 0, index=ids.to_numpy())
    return pd.DataFrame(columns).sort_index()


def _check_same_problems(ref_name: str, ref: pd.Series, name: str, ids: pd.Series) -> None:
    reference, current = set(ref.index), set(ids)
    if current != reference:
        extra, missing = sorted(current - reference)[:3], sorted(reference - current)[:3]
        raise ValueError(
            f"models {ref_name!r} and {name!r} disagree on the problem set: "
            f"{name!r} adds {extra} and lacks {missing} (first few shown)"
        )


def union_coverage(tables: Mapping[str, pd.DataFrame]) -> float:
    """Share of problems solved by any sample of any model."""
    return float(solved_matrix(tables).any(axis=1).mean())


def unsolved(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Problem ids that no sample of any model solved, sorted."""
    solved = solved_matrix(tables).any(axis=1)
    return [str(i) for i in solved.index[~solved]]


def coverage_table(tables: Mapping[str, pd.DataFrame], bench: str) -> pd.DataFrame:
    """Rows per model plus "union": model, bench, n, coverage, n_problems, n_solved.

    n is the smallest per-problem sample count; for "union" it is the sum over models.
    """
    solved = solved_matrix(tables)
    rows = [(name, int(t["n"].min()), int(solved[name].sum())) for name, t in tables.items()]
    rows.append((UNION, sum(r[1] for r in rows), int(solved.any(axis=1).sum())))
    frame = pd.DataFrame(rows, columns=["model", "n", "n_solved"])
    frame.insert(1, "bench", bench)
    frame["n_problems"] = len(solved)
    frame["coverage"] = frame["n_solved"] / frame["n_problems"]
    return frame[["model", "bench", "n", "coverage", "n_problems", "n_solved"]]
