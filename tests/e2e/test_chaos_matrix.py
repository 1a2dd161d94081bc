"""The reduced chaos matrix on the e2e tests' shared local system (the full one is `make chaos`).

One cell of each fault family that needs nothing but the sandboxes (a 5xx burst at Stripe, resets at
SendGrid, 429s with Retry-After at Twilio, duplicated and reordered SendGrid webhooks), two
notifications each, judged by the same checks as the full matrix: one final status, nothing charged,
refunded, e-mailed or texted twice, failures parked with a reason, attempts within the policy, and a
record the sandboxes agree with.
"""

import pytest

from tidings_local.chaos import matrix
from tidings_local.chaos.report import table
from tidings_local.chaos.runner import Rig, run_matrix

pytestmark = pytest.mark.e2e


def test_the_reduced_chaos_matrix_passes_every_cell(system, saga):
    rig = Rig(system, layer_settings={})  # the layer's default in-call attempts, as the e2e stack runs
    try:
        results = run_matrix(rig, matrix.select(list(matrix.REDUCED)), size=2)
    finally:
        rig.close()
    details = {r.cell.key: r.error or r.failures for r in results if not r.ok}
    assert details == {}, table(results)
    # Every cell counted real effects: one charge, e-mail and SMS per notification, none twice.
    for result in results:
        assert result.counts["charges"] == 2, result.cell.key
        assert result.counts["emails"] == 2, result.cell.key
        assert result.counts["sms"] == 2, result.cell.key
