"""drsim: moto server, served in-process, with a thin layer that behaves like AWS on a bad night.

moto answers the AWS APIs; drsim adds what moto does not model and drpilot's safety case
depends on: time (promotions, snapshot copies, reboots and Aurora global switches take a
while), CloudWatch alarm evaluation with its deliveries (EventBridge, SNS, the alarm's Lambda
action), replication that lags and breaks, a region that goes dark, throttling and latency,
and a wire log that counts what reached "AWS". Each model cites the AWS behaviour it follows.

Every model is switchable per region through the control API under ``/drsim/`` (see
``http.py`` and the README's "The simulator" section); the Rust client is ``tests/src/sim.rs``.
drsim never changes what drpilot's own code does: it only changes what AWS answers.
"""
