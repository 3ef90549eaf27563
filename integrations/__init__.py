"""Integrations attached to the core through `collab_server.hooks`: parents' digests and their
delivery channels (WhatsApp, email, in-app), the WhatsApp webhook and people records.

Import from the modules (`integrations.notifications.NotificationService`, ...): this package
imports nothing, so a store that implements `integrations.contracts` loads nothing else.
"""
