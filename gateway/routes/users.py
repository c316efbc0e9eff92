"""Placeholder: filled in by the issue-4 work on this resource."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
