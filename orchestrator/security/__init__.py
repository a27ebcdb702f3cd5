"""Who may do what: principals from bearer tokens, the first-run token, the role-policy gate."""
