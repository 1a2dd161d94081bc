"""A Lambda context for calling a handler in-process, as the NotifyApi function would be called."""


class NotifyApiContext:
    function_name = "NotifyApiFunction"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:NotifyApiFunction"
    aws_request_id = "req-1"

    @staticmethod
    def get_remaining_time_in_millis():
        return 29_000
