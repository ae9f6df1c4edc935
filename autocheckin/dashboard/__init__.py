"""The operator's dashboard (`/dashboard`): server-rendered pages over the same services
the API uses, for admins signed in with a session cookie."""
