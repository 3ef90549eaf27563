"""Therapy sessions: the schedule, live on every screen, with reminders and progress updates.

records   sessions, measurements and scheduled jobs; the store interface
student   what a session needs from the student's IEP (name, goals)
policy    who may see and change a student's sessions; the live topics' policies
service   scheduling, moving, completing: one transaction per change, its events, its jobs
jobs      durable scheduled jobs armed with one timer (reminders, moved notices, progress)
messages  reminders, notices and progress updates rendered in Arabic and English
api       the REST routes
"""
