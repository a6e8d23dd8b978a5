"""From a trained model to a shipped LiteRT bundle: conversion, the accuracy gate, the bundle."""
