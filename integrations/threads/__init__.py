"""Messages between a student's family and the team: one thread per student (its IEP)."""
