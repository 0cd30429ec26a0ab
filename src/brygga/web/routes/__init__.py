"""One router per area: public (log-in), resident portal, staff (studies), admin, JSON API."""
