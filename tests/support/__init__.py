"""Helpers shared by the test folders (on pytest's ``pythonpath``: ``from support.e2e import ...``).

- ``template``: template.yaml as data (read by the local tooling's parser) and tables built from it
- ``notify_api``: the notify API's handler in-process on moto (tables, state machine, settings)
- ``e2e``: the notify API client, an AWS outage switch and execution history for the end-to-end tests
- ``saga``: fakes of the payment gateway and the channels for the saga's unit tests
- ``provider_fakes``: scripted httpx transports and in-memory credentials for the provider layer
- ``sandboxes``: a webhook receiver and request bodies for the sandbox tests
- ``webhook_signing`` / ``webhook_http``: provider signatures and signed API Gateway events
- ``rotation``: reading a secret's versions in the rotation tests
"""
