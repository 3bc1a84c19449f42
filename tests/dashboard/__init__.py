"""A package, so that its package-scoped fixtures end with its last test: Playwright's sync API keeps an event loop
on the main thread while it runs, which the asyncio tests collected after this folder could not run beside."""
