"""Prometheus metrics, on a registry owned by one app (no process-global collectors)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge("collab_connections", "Open WebSocket connections", registry=r)
        self.documents_loaded = Gauge("collab_documents_loaded", "Documents in memory", registry=r)
        self.updates_in = Counter(
            "collab_updates_in", "Client updates applied to a document and stored", registry=r
        )
        self.updates_out = Counter(
            "collab_updates_out", "Update frames delivered to connections", registry=r
        )
        self.frames_rejected = Counter(
            "collab_frames_rejected", "Frames that closed their connection", ["reason"], registry=r
        )
        self.store_latency = Histogram(
            "collab_store_seconds",
            "Store operation latency",
            ["operation"],
            registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
        )
        self.commit_batch = Histogram(
            "collab_group_commit_batch_size",
            "Updates per group commit",
            registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024),
        )
        self.compactions = Counter("collab_compactions", "Log compactions", registry=r)
        self.store_failures = Counter(
            "collab_store_failures", "Failed store operations", ["operation"], registry=r
        )
        self.log_conflicts = Counter(
            "collab_log_conflicts",
            "Appends refused because another writer holds the log position",
            registry=r,
        )
        self.hooks_shed = Counter(
            "collab_hook_calls_shed",
            "Hook calls dropped because extensions fell too far behind",
            ["hook"],
            registry=r,
        )
        self.writes_refused = Counter(
            "collab_writes_refused",
            "Connections closed (1013) because the store could not take more changes",
            registry=r,
        )

        # Cluster mode (zero while one process serves alone).
        self.cluster_fanout_lag = Histogram(
            "collab_cluster_fanout_lag_seconds",
            "From the owner's commit to a replica's broadcast of a stored change",
            registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
        )
        self.cluster_gap_fills = Counter(
            "collab_cluster_gap_fills",
            "Stored changes a replica read from the store because the bus did not bring them",
            registry=r,
        )
        self.cluster_submits_resent = Counter(
            "collab_cluster_submits_resent",
            "Client changes a replica sent its owner again after a second with no answer",
            registry=r,
        )
        self.cluster_promotions = Counter(
            "collab_cluster_promotions",
            "Replicas that became the owner of their document",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
