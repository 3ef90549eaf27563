"""Voice calls: rings, signalling between browsers, ICE servers; the media never touches us."""
