import asyncio
from asgiref.sync import async_to_sync
def test_async_after_browser_tests():
    async def f(): return 1
    assert async_to_sync(f)() == 1
    assert asyncio.run(f()) == 1
def test_orm_after_browser_tests(transactional_db):
    from django.contrib.auth.models import User
    assert User.objects.count() == 0
