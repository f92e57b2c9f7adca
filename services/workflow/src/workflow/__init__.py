"""Queue consumer: runs each delivery request against package, dronescheduler and delivery."""
