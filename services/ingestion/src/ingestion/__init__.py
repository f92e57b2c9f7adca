"""Public API: schedule, reschedule and cancel deliveries; requests go on the queue."""
