"""Errors of the accounts domain."""

from app.errors import Conflict, NotAuthenticated, NotFound, TooManyRequests, Unprocessable


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    message = "Unknown username or wrong password."


class UsernameTaken(Conflict):
    code = "username_taken"
    message = "That username is already taken."


class UserNotFound(NotFound):
    code = "user_not_found"
    message = "No such user."


class WeakPassword(Unprocessable):
    code = "weak_password"


class LoginThrottled(TooManyRequests):
    code = "login_throttled"
    message = "Too many failed logins; wait before trying again."


class TokenNotFound(NotFound):
    code = "token_not_found"
    message = "No such token."
