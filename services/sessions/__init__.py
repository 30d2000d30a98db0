"""Sessions: lifecycle, members, invitations, chat, event log, documents, notifications."""
