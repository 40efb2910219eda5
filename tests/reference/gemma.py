"""GEMMA's association tables as a reference: compare a scan with ``gemma -lmm 4`` output."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: GEMMA's Newton step stops at |delta lambda| < 1e-5, so its per-marker hsq is accurate to
#: ~1e-7 only; beta moves with hsq (d beta/d hsq ~ se), which for a beta near zero is a large
#: relative change. Effects are therefore compared to 1e-4 relative *or* 1e-4 of their se.
EFFECT_RTOL = 1e-4
LOG10P_ATOL = 0.01


def compare_with_gemma(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    """Assert that ``ours`` (a scan table) equals GEMMA's ``-lmm 4`` table ``ref`` on every
    marker GEMMA analysed, within the tolerances above."""
    ours = ours.set_index("marker").loc[ref["rs"].astype(str)]
    assert ours["note"].eq("").all()
    cols = ["beta", "se", "p_wald", "p_lrt", "p_score", "hsq"]
    assert np.isfinite(ours[cols].to_numpy()).all()  # lmmlite gives a result everywhere
    # GEMMA's REML Newton step fails on a few markers (nan beta, se, l_remle and p_wald in its
    # table, "Newton did not converge"); compare where GEMMA has a value
    ok = np.isfinite(ref["l_remle"].to_numpy())
    assert ok.mean() > 0.99
    ours, ref = ours[ok], ref[ok]
    for col in ("beta", "se"):
        a, b = ours[col].to_numpy(), ref[col].to_numpy()
        tol = EFFECT_RTOL * np.maximum(np.abs(b), ref["se"].to_numpy())
        assert np.all(np.abs(a - b) <= tol), col
    assert np.all(np.abs(ours["se"] / ref["se"].to_numpy() - 1) <= EFFECT_RTOL)
    for col in ("p_wald", "p_lrt", "p_score"):
        diff = np.abs(np.log10(ours[col].to_numpy()) - np.log10(ref[col].to_numpy()))
        assert diff.max() <= LOG10P_ATOL, col
    np.testing.assert_allclose(ours["af"], ref["af"], atol=5e-4)  # GEMMA prints 3 decimals
    l_remle = ref["l_remle"].to_numpy()
    # GEMMA's hsq is bounded below by lambda = 1e-5 (hsq ~ 1e-5), lmmlite's by 0
    np.testing.assert_allclose(ours["hsq"], l_remle / (1 + l_remle), atol=2e-5)
