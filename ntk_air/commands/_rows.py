"""Rows of the built-in data sets: the sizes the CLI asks for, and stand-ins of those sizes to
plan a run on before a row is generated."""

from __future__ import annotations

from ._errors import CliError

# Built-in data sets whose loader draws its own train/test split of any size (split_sizes=True).
SPLIT_SIZED = ("digits", "digits-binary", "mnist1d", "mnist1d-binary")


# Rows of the built-in data sets at their defaults (train, test).
DEFAULT_ROWS = {"clusters": (160, 160), "digits": (500, 500), "mnist1d": (500, 500)}


DIGITS_ROWS = 1797  # sklearn's digits: every example, train and test together


def refuse_beyond_digits(n_train, n_test) -> None:
    """The one refusal of more digits rows than exist (the options as given, None: not given)."""
    raise CliError(
        f"--n-train {n_train} / --n-test {n_test}: digits has {DIGITS_ROWS} examples in all "
        "(train + test); --dataset mnist1d or clusters generate as many rows as asked"
    )


def _larger_split(name: str, sizes: dict) -> dict:
    """Loader options for --n-train/--n-test above the data set's default rows ({} when they
    suffice)."""
    base = name.replace("-binary", "")
    n_train, n_test = sizes.get("n_train"), sizes.get("n_test")
    train0, test0 = DEFAULT_ROWS[base]
    if (n_train or 0) <= train0 and (n_test or 0) <= test0:
        return {}
    want_train, want_test = max(n_train or 0, train0), max(n_test or 0, test0)
    if base == "clusters":  # 4 clusters by default
        return {"n_per_cluster": -(-want_train // 4), "n_test_per_cluster": -(-want_test // 4)}
    if base == "digits" and want_train + want_test > DIGITS_ROWS:
        test = n_test or max(0, min(test0, DIGITS_ROWS - want_train))
        if want_train + test > DIGITS_ROWS or test < 1:
            refuse_beyond_digits(n_train, n_test)
        want_test = test
    return {"n_train": want_train, "n_test": want_test}


def _stand_in(name: str, kwargs: dict, n_train, n_test):
    """A Dataset of the shapes and dtypes `name` would have at n_train × n_test rows, as
    zero-stride views of its default rows."""
    import numpy as np

    from .. import data as data_mod

    base = data_mod.load(name, **kwargs)
    train0, test0 = np.shape(base.x)[0], np.shape(base.x_test)[0]
    n, m = n_train or train0, test0 if n_test is None else n_test

    def rows(a, k):
        a = np.asarray(a)
        return np.broadcast_to(a[:1], (k, *a.shape[1:])) if a.shape[0] else a

    return base._replace(
        x=rows(base.x, n),
        y=rows(base.y, n),
        y_clean=rows(base.y_clean, n),
        x_test=rows(base.x_test, m),
        y_test_clean=rows(base.y_test_clean, m),
    )
