"""Operator tooling for Tidings: the same commands on a deployed stack and on the local system.

Everything here talks to AWS through boto3 only (CloudFormation to find the stack's resources, then
DynamoDB, Step Functions, SQS), so `tidings notifications|executions|errors|dlq|replay` behave the same on
AWS (``--stack-name``/``--region``/``--profile``, defaults from samconfig.toml) and against the local
system's moto endpoint. Nothing here is deployed, and the layer never imports it.
"""
