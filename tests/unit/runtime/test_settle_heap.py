"""What a service built before it starts serving is left out of later garbage collections."""
import gc

from warden.runtime.runner import settle_heap


def test_objects_built_at_startup_are_not_walked_by_later_collections():
    built_at_startup = [[n] for n in range(1000)]
    try:
        settle_heap()
        later = [[n] for n in range(10)]
        full_collection_walks = {id(o) for o in gc.get_objects()}
        assert id(later) in full_collection_walks
        assert id(built_at_startup) not in full_collection_walks
        assert not any(id(inner) in full_collection_walks for inner in built_at_startup)
    finally:
        gc.unfreeze()
