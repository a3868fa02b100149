"""The member portal: one-time-code login, member sessions, i18n, and the pages members use."""
