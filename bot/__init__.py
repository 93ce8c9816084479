"""The Telegram transport: python-telegram-bot handlers over the Assistant."""
