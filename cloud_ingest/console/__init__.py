"""The console's logic: accounts and grants, overview, site history, reports, exports, enrolment."""
