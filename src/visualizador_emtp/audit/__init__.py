"""Audit trail: append-only, hash-chained JSON lines in logs/audit.jsonl."""

from visualizador_emtp.audit.chain import AuditLog, VerifyResult, append_event

__all__ = ["AuditLog", "VerifyResult", "append_event"]
