"""The simulator's own decisions, without a server: `python -m unittest discover tests/emulator`
(part of `make test`)."""

import unittest

from drsim.cloudwatch import alarm_state


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
