"""The local console: the Step Functions console's view of Tidings, and more, as a small web page.

Server-rendered HTML on the operator functions (``tidings_ops.operations``), so it shows exactly what
the CLI and the API show: notifications and executions with filters, an execution's state machine drawn
from the real ASL with the path coloured, each state's input and output redacted, the joined timeline
and its chart, the dead-letter queues with a redrive button, and the sandboxes' fault switches.
"""
