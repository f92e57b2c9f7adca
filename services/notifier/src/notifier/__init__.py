"""The notifier: delivery notifications by e-mail, SMS and webhooks, sent once each."""
