"""The HMM datasets: earthquake counts and Filardo's business-cycle series (bundled), and
a synthetic ion-channel record.

The loaders return :class:`xarray.Dataset` objects with provenance in ``attrs``; they are
registered in :mod:`sciTie.datasets` as ``earthquakes``, ``business-cycle`` and
``ion-channel``.
"""
from __future__ import annotations

import os

import numpy as np
import xarray as xr

from .._validation import check_int
from ..errors import DataFormatError

__all__ = ["load_earthquakes", "load_business_cycle", "load_ion_channel",
           "simulate_ion_channel", "read_year_counts", "ION_CHANNEL_SCHEME", "NBER_RECESSIONS"]

#: NBER business-cycle reference dates within 1948-1991, ``(peak, trough)`` months: the
#: recession runs from the month after the peak to the trough (www.nber.org/research/data/
#: us-business-cycle-expansions-and-contractions).
NBER_RECESSIONS = (("1948-11", "1949-10"), ("1953-07", "1954-05"), ("1957-08", "1958-04"),
                   ("1960-04", "1961-02"), ("1969-12", "1970-11"), ("1973-11", "1975-03"),
                   ("1980-01", "1980-07"), ("1981-07", "1982-11"), ("1990-07", "1991-03"))

#: The aggregated Markov scheme of the synthetic channel: C1 - C2 - C3 - O4 - O5.
#: Entries are per-sample transition probabilities (rates times the sampling interval).
ION_CHANNEL_SCHEME = {
    "states": ["C1", "C2", "C3", "O4", "O5"],
    "levels": {"closed": 0.0, "open": 1.0},  # pA
    "noise_sd": 0.25,  # pA
    "dt_ms": 0.1,
    "p": {  # (from, to): probability per sample
        ("C1", "C2"): 0.005, ("C2", "C1"): 0.020,
        ("C2", "C3"): 0.050, ("C3", "C2"): 0.100,
        ("C3", "O4"): 0.200, ("O4", "C3"): 0.050,
        ("O4", "O5"): 0.050, ("O5", "O4"): 0.010,
    },
    "tied_states": [[0, 1, 2], [3, 4]],
}


def ion_channel_truth() -> dict:
    """True parameters of the synthetic channel.

    Returns
    -------
    dict
        ``transmat`` (5 x 5, tridiagonal), ``startprob`` (stationary distribution),
        ``means`` (per state), ``noise_sd``, ``rates_per_ms`` (the continuous-time rates
        that the per-sample probabilities approximate), ``tied_states``.
    """
    s = ION_CHANNEL_SCHEME
    names = s["states"]
    K = len(names)
    A = np.zeros((K, K))
    for (a, b), p in s["p"].items():
        A[names.index(a), names.index(b)] = p
    A[np.diag_indices(K)] = 1.0 - A.sum(axis=1)
    evals, evecs = np.linalg.eig(A.T)
    pi = np.real(evecs[:, np.argmin(np.abs(evals - 1))])
    pi = pi / pi.sum()
    levels = np.array([s["levels"]["closed"]] * 3 + [s["levels"]["open"]] * 2)
    rates = {f"{a}->{b}": p / s["dt_ms"] for (a, b), p in s["p"].items()}
    return {"transmat": A, "startprob": pi, "means": levels, "noise_sd": s["noise_sd"],
            "rates_per_ms": rates, "tied_states": [list(g) for g in s["tied_states"]],
            "dt_ms": s["dt_ms"], "states": list(names)}


def simulate_ion_channel(n_samples: int = 200_000, seed: int = 20240607) -> xr.Dataset:
    """Simulate the patch-clamp current of the aggregated Markov scheme.

    Three closed states share the closed current level, two open states the open level;
    white Gaussian noise is added. Deterministic for a given ``seed``.

    Parameters
    ----------
    n_samples : int, optional
        Number of samples (``dt_ms`` apart).
    seed : int, optional
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    xarray.Dataset
        ``current`` (time) in pA, ``state`` (time) the true hidden state, ``level`` (time)
        0 closed / 1 open; the true parameters in ``attrs``.
    """
    # 10**8 samples already take several GB with the true path and levels
    n_samples = check_int(n_samples, "n_samples", minimum=2, maximum=10**8)
    seed = check_int(seed, "seed", minimum=0)
    truth = ion_channel_truth()
    # two independent streams, so that a shorter record is a prefix of a longer one
    rng_path, rng_noise = (np.random.default_rng(s)
                           for s in np.random.SeedSequence(seed).spawn(2))
    A, pi = truth["transmat"], truth["startprob"]
    K = len(pi)
    cdf = np.cumsum(A, axis=1)
    u = rng_path.random(int(n_samples))
    states = np.empty(int(n_samples), dtype=np.int64)
    states[0] = int(np.searchsorted(np.cumsum(pi), u[0], side="right"))
    for t in range(1, int(n_samples)):
        states[t] = min(int(np.searchsorted(cdf[states[t - 1]], u[t], side="right")), K - 1)
    current = truth["means"][states] + truth["noise_sd"] * rng_noise.standard_normal(
        int(n_samples))
    dt = truth["dt_ms"]
    ds = xr.Dataset(
        {"current": ("time", current, {"units": "pA", "long_name": "membrane current"}),
         "state": ("time", states, {"long_name": "true hidden state (0-2 closed, 3-4 open)"}),
         "level": ("time", (states >= 3).astype(np.int64),
                   {"long_name": "true observable level (0 closed, 1 open)"})},
        coords={"time": ("time", np.arange(int(n_samples)) * dt, {"units": "ms"})},
    )
    ds.attrs.update({
        "title": "Synthetic single-channel patch-clamp record (aggregated Markov scheme)",
        "source": "generated by sciTie.hmm.data.simulate_ion_channel",
        "scheme": "C1 <-> C2 <-> C3 <-> O4 <-> O5 (closed level shared by C1-C3, open by "
                  "O4-O5)",
        "seed": int(seed),
        "n_samples": int(n_samples),
        "dt_ms": dt,
        "noise_sd_pA": truth["noise_sd"],
        "closed_level_pA": float(truth["means"][0]),
        "open_level_pA": float(truth["means"][-1]),
        "true_transmat": truth["transmat"].ravel().tolist(),
        "true_transmat_shape": [K, K],
        "true_startprob": truth["startprob"].tolist(),
        "true_rates_per_ms": "; ".join(f"{k}={v:g}" for k, v in truth["rates_per_ms"].items()),
        "tied_states": str(truth["tied_states"]),
    })
    return ds


def load_ion_channel(n_samples: int = 200_000, seed: int = 20240607) -> xr.Dataset:
    """The ``ion-channel`` dataset (see :func:`simulate_ion_channel`).

    Parameters
    ----------
    n_samples : int, optional
        Number of samples.
    seed : int, optional
        Seed; the default gives the registered dataset.

    Returns
    -------
    xarray.Dataset
        The simulated record with the true parameters in ``attrs``.
    """
    return simulate_ion_channel(n_samples=n_samples, seed=seed)


def load_earthquakes(path=None) -> xr.Dataset:
    """Annual counts of major earthquakes (M >= 7), 1900-2006.

    Parameters
    ----------
    path : str or path-like, optional
        A CSV with ``year,count`` columns to read instead of the bundled file.

    Returns
    -------
    xarray.Dataset
        ``count`` on a ``year`` coordinate (107 values summing to 2072), provenance in
        ``attrs``.
    """
    from sciTie.datasets import bundled_path

    from sciTie.io import as_path

    file = bundled_path("earthquakes.csv") if path is None else as_path(path, "path")
    years, counts = read_year_counts(file)
    ds = xr.Dataset({"count": ("year", counts, {"long_name": "major earthquakes (M>=7)",
                                                "units": "1/year"})},
                    coords={"year": years})
    ds.attrs.update({
        "title": "Annual counts of major earthquakes, 1900-2006",
        "source": "Zucchini, MacDonald & Langrock, Hidden Markov Models for Time Series, "
                  "2nd ed. (CRC Press, 2016)",
        "file": str(file),
        "n_years": int(len(counts)),
        "total_count": int(counts.sum()),
    })
    return ds


def load_business_cycle(path=None) -> xr.Dataset:
    """Filardo's (1994) monthly US industrial production and leading indicator, 1948-1991,
    laid out for a model whose transition into month t depends on the indicator of t - 1.

    Parameters
    ----------
    path : str or path-like, optional
        A folder holding ``filardo.csv`` to read instead of the bundled one.

    Returns
    -------
    xarray.Dataset
        On ``month`` (1948-03 ... 1991-04, 518 months: the file's first month only gives
        the indicator of the second): ``ip_growth`` (``dlip``: growth of industrial
        production, % per month, pre-1960 months rescaled), ``leading_prev`` (the demeaned
        growth of the leading indicator in the month before), ``leading`` (the same in the
        month itself), ``published_expansion`` (smoothed probability of expansion of the
        published AR(4) model, NaN for its first four months), ``nber_recession`` (1 in
        NBER recession months, :data:`NBER_RECESSIONS`) and ``year`` (decimal years);
        provenance and licence in ``attrs`` (``sciTie/datasets/data/filardo/README.md``).
    """
    from sciTie.datasets import data_dir

    file = data_dir("business-cycle", path) / "filardo.csv"
    table = _read_filardo(file)
    month = table["date"]
    recession = np.zeros(month.size, dtype=np.int64)
    for peak, trough in NBER_RECESSIONS:
        recession[(month > np.datetime64(peak, "M")) & (month <= np.datetime64(trough, "M"))] = 1
    month_index = month.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    sl = slice(1, None)  # the first month has no preceding indicator
    ds = xr.Dataset(
        {"ip_growth": ("month", table["dlip"][sl],
                       {"long_name": "growth of US industrial production (100 dlog)",
                        "units": "%/month"}),
         "leading_prev": ("month", table["dmdlleading"][:-1],
                          {"long_name": "demeaned growth of the leading indicator, month "
                                        "before", "units": "%/month"}),
         "leading": ("month", table["dmdlleading"][sl],
                     {"long_name": "demeaned growth of the leading indicator",
                      "units": "%/month"}),
         "published_expansion": ("month", table["smoothed_0"][sl],
                                 {"long_name": "smoothed probability of expansion, "
                                               "published AR(4) TVTP model", "units": "1"}),
         "nber_recession": ("month", recession[sl],
                            {"long_name": "NBER recession month", "units": "1"}),
         "year": ("month", 1970 + month_index[sl] / 12.0, {"units": "year"})},
        coords={"month": month[sl].astype("datetime64[ns]")})
    ds.attrs.update({
        "title": "US industrial production growth and leading indicator, 1948-1991 "
                 "(Filardo 1994)",
        "source": "A. J. Filardo, J. Business & Economic Statistics 12 (1994) 299-308, as "
                  "prepared by C.-J. Kim & C. R. Nelson, State-Space Models with Regime "
                  "Switching (MIT Press, 1999); file from statsmodels (BSD-3-Clause), "
                  "statsmodels/tsa/regime_switching/tests/results/mar_filardo.csv",
        "licence": "BSD-3-Clause (statsmodels); see sciTie/datasets/data/filardo/README.md",
        "published_log_likelihood": -586.5718,
        "file": str(file),
    })
    return ds


def _read_filardo(file) -> dict[str, np.ndarray]:
    """The ``date,dlip,dmdlleading,smoothed_0`` table (an empty cell of ``smoothed_0`` is NaN)."""
    columns = ("date", "dlip", "dmdlleading", "smoothed_0")
    with open(file, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    if not lines or lines[0].split(",") != list(columns):
        raise DataFormatError(f"expected the header {','.join(columns)!r}", path=file, line=1)
    dates, values = [], []
    for lineno, line in enumerate(lines[1:], start=2):
        cells = line.split(",")
        if len(cells) != len(columns):
            raise DataFormatError(f"expected {len(columns)} comma-separated fields, got "
                                  f"{len(cells)}: {line!r}", path=file, line=lineno)
        try:
            dates.append(np.datetime64(cells[0], "M"))
            values.append([float(c) if c else np.nan for c in cells[1:]])
        except ValueError as exc:
            raise DataFormatError(f"{exc} in {line!r}", path=file, line=lineno) from None
    values = np.array(values, dtype=np.float64).reshape(-1, len(columns) - 1)
    if not np.all(np.isfinite(values[:, :2])):
        raise DataFormatError("dlip and dmdlleading must be numbers in every row", path=file)
    out = {"date": np.array(dates, dtype="datetime64[M]")}
    out.update(zip(columns[1:], values.T))
    return out


def _integer_cell(text: str, what: str, file, line: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise DataFormatError(f"{what} {text!r} is not an integer", path=file, line=line,
                              key=what) from None


def read_year_counts(file: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``year,count`` CSV (``#`` comments and blank lines allowed).

    Parameters
    ----------
    file : path-like
        The CSV file.

    Returns
    -------
    years, counts : ndarray of int64
        Strictly increasing years and their non-negative counts.

    Raises
    ------
    sciTie.errors.DataFormatError
        Naming the file and line of anything that is not such a table (wrong header, a row
        without two integers, a negative count, a year out of order, no rows).
    OSError
        The file cannot be opened.
    """
    try:
        with open(file, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not a UTF-8 text file ({exc.reason} at byte {exc.start}); "
                              "expected a 'year,count' CSV", path=file) from None
    header_line = None
    years: list[int] = []
    counts: list[int] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split(",")]
        if header_line is None:
            if cells != ["year", "count"]:
                raise DataFormatError(f"expected columns 'year,count' in the header, got "
                                      f"{line!r}", path=file, line=lineno)
            header_line = lineno
            continue
        if len(cells) != 2:
            raise DataFormatError(f"expected two comma-separated integers 'year,count', got "
                                  f"{len(cells)} field(s): {line!r}", path=file, line=lineno)
        year = _integer_cell(cells[0], "year", file, lineno)
        count = _integer_cell(cells[1], "count", file, lineno)
        if count < 0:
            raise DataFormatError(f"count {count} is negative; counts are >= 0", path=file,
                                  line=lineno, key="count")
        if years and year <= years[-1]:
            raise DataFormatError(f"year {year} does not follow {years[-1]}; years must "
                                  "increase down the file", path=file, line=lineno, key="year")
        years.append(year)
        counts.append(count)
    if header_line is None:
        raise DataFormatError("the file is empty; expected a 'year,count' header and one row "
                              "per year", path=file)
    if not years:
        raise DataFormatError("no data rows after the header; expected one 'year,count' row "
                              "per year", path=file, line=header_line)
    return np.array(years, dtype=np.int64), np.array(counts, dtype=np.int64)
