// The runtime's own start-up cost: an empty program, compiled exactly as pidone is.
export {};
