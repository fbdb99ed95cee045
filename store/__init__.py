"""PostgreSQL long-term memory store for LangGraph."""
