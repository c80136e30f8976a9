"""The interception lifecycle after the first decision: timed holds and how verifications close them."""
