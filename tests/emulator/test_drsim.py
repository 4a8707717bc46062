"""The simulator's own decisions, without a server: `python -m unittest discover tests/emulator`
(part of `make test`)."""

import unittest

from drsim.cloudwatch import alarm_state
from drsim.rds import Writes


def below_one(v: float) -> bool:
    return v < 1.0


class AlarmEvaluation(unittest.TestCase):
    """CloudWatch's rules for an alarm with EvaluationPeriods 3, DatapointsToAlarm 3 (the
    shipped primary-down alarm: ReplicationHealthy < 1), values newest first."""

    def state(self, values, treat="breaching", n=3, m=3):
        decided = alarm_state(values, n, m, treat, below_one)
        return decided and decided[0]

    def test_three_breaching_periods_alarm(self):
        self.assertEqual(self.state([0, 0, 0, 1, 1, 1]), "ALARM")

    def test_two_breaching_periods_do_not(self):
        self.assertEqual(self.state([0, 0, 1, 1, 1, 1]), "OK")

    def test_a_late_datapoint_is_not_a_breach_when_older_real_ones_exist(self):
        # one period without a datapoint: CloudWatch evaluates the three most recent real ones
        self.assertEqual(self.state([None, 1, 1, 1, 1, 1]), "OK")
        self.assertEqual(self.state([None, 0, 0, 0, 1, 1]), "ALARM")

    def test_missing_data_fills_in_only_as_much_as_needed(self):
        # two real healthy datapoints in the whole range: one missing is filled in as breaching
        self.assertEqual(self.state([None, None, None, None, 1, 1]), "OK")
        # nothing at all: three breaching
        self.assertEqual(self.state([None] * 6), "ALARM")
        self.assertEqual(self.state([None] * 6, treat="notBreaching"), "OK")
        self.assertEqual(self.state([None] * 6, treat="missing"), "INSUFFICIENT_DATA")

    def test_ignore_keeps_the_state_while_data_is_missing(self):
        self.assertIsNone(self.state([None, None, None, None, 1, 1], treat="ignore"))
        self.assertEqual(self.state([0, 0, 0, None, None, None], treat="ignore"), "ALARM")

    def test_m_of_n(self):
        self.assertEqual(self.state([0, 1, 0, 1, 1, 1], n=3, m=2), "ALARM")
        self.assertEqual(self.state([0, 1, 1, 0, 0, 0], n=3, m=2), "OK")


if __name__ == "__main__":
    unittest.main()


class WritePositions(unittest.TestCase):
    """A primary writing 10 a second, its clock ticking late: positions between ticks are on
    the line, and a pause in writing stays flat."""

    def test_between_ticks_and_across_a_pause(self):
        w = Writes()
        w.write(1.0, 0.05, 0.5)  # ticks at 1.0 and 1.3 (a late clock)
        w.write(1.3, 0.3, 3.0)
        self.assertAlmostEqual(w.position_at(1.15), 2.0)
        self.assertAlmostEqual(w.time_at(2.0), 1.15)
        w.write(5.0, 0.05, 0.5)  # no writes from 1.3 to 4.95
        self.assertAlmostEqual(w.position_at(3.0), 3.5)
        self.assertAlmostEqual(w.time_at(3.75), 4.975)
        self.assertIsNone(w.time_at(10.0))
